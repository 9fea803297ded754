package webhook

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/interpreter"

	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// Limits of a trigger.
const (
	MaxConditionLen = 1024
	MaxCooldown     = 7 * 24 * 3600
	MinSilence      = 10
	MaxSilence      = 7 * 24 * 3600
	// conditionCost bounds the work of one evaluation (CEL's cost units); a condition over one value
	// and its predecessor needs far less.
	conditionCost = 1000
)

// FieldError is bad input in one field of a webhook: the API answers 400 with Code, naming Field.
type FieldError struct {
	Field   string // e.g. "trigger.condition"
	Code    string // a stable error code (docs/errors.md)
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// The field error codes.
const (
	CodeInvalidURL       = "webhook_invalid_url"
	CodeInvalidTrigger   = "webhook_invalid_trigger"
	CodeInvalidCondition = "webhook_invalid_condition"
	CodeUnknownSignal    = "webhook_unknown_signal"
	CodeNotGranted       = "webhook_not_granted"
	CodeInvalidField     = "webhook_invalid_field"
)

func fieldErr(field, code, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Condition is a compiled CEL condition over one signal's value and its previous value.
type Condition struct {
	prg  cel.Program
	kind telemetry.Kind
}

// envs holds one CEL environment per value kind: building one costs milliseconds and megabytes, and an
// environment is safe for concurrent use.
var envs sync.Map // telemetry.Kind → *cel.Env

func envFor(k telemetry.Kind) (*cel.Env, error) {
	if e, ok := envs.Load(k); ok {
		return e.(*cel.Env), nil
	}
	var t *cel.Type
	switch k {
	case telemetry.KindNumber:
		t = cel.DoubleType
	case telemetry.KindBool:
		t = cel.BoolType
	case telemetry.KindString:
		t = cel.StringType
	case telemetry.KindStrings:
		t = cel.ListType(cel.StringType)
	case telemetry.KindLocation:
		t = cel.MapType(cel.StringType, cel.DoubleType)
	default:
		return nil, fmt.Errorf("no CEL type for %s", k)
	}
	e, err := cel.NewEnv(cel.Variable("value", t), cel.Variable("previousValue", t), cel.CrossTypeNumericComparisons(true))
	if err != nil {
		return nil, err
	}
	envs.Store(k, e)
	return e, nil
}

// CompileCondition compiles a CEL condition over a signal of sig's kind: value and previousValue are
// doubles for numbers, bools for booleans, strings, lists of strings, or maps with latitude, longitude and
// hdop for locations. The condition must be a boolean expression.
func CompileCondition(sig *telemetry.Signal, expr string) (*Condition, error) {
	if len(expr) > MaxConditionLen {
		return nil, fmt.Errorf("longer than %d bytes", MaxConditionLen)
	}
	env, err := envFor(sig.Kind)
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		return nil, iss.Err()
	}
	if !ast.OutputType().IsExactType(types.BoolType) {
		return nil, fmt.Errorf("the condition is of type %s, not bool", ast.OutputType())
	}
	// A condition whose cost has a static bound within conditionCost (one over numbers or booleans) runs
	// without the runtime cost tracking, which cost more than the evaluation; one over strings, lists or
	// maps (whose sizes the estimate does not know) is tracked and stopped at conditionCost.
	var opts []cel.ProgramOption
	if est, err := env.EstimateCost(ast, unknownSizes{}); err != nil || est.Max > conditionCost {
		opts = append(opts, cel.CostLimit(conditionCost), cel.InterruptCheckFrequency(100))
	}
	prg, err := env.Program(ast, opts...)
	if err != nil {
		return nil, err
	}
	return &Condition{prg: prg, kind: sig.Kind}, nil
}

// unknownSizes is a cost estimator that knows no size and no call's cost: CEL's own bounds apply, and a
// variable's size is unbounded.
type unknownSizes struct{}

func (unknownSizes) EstimateSize(checker.AstNode) *checker.SizeEstimate { return nil }
func (unknownSizes) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// condVars are a condition's variables, value and previousValue (an interpreter.Activation): a map of
// them cost an allocation an evaluation.
type condVars struct{ value, previous any }

func (a *condVars) ResolveName(name string) (any, bool) {
	switch name {
	case "value":
		return a.value, true
	case "previousValue":
		return a.previous, true
	}
	return nil, false
}

func (a *condVars) Parent() interpreter.Activation { return nil }

// celValue is v as the condition sees it.
func celValue(v telemetry.Value) any {
	switch v.Signal.Kind {
	case telemetry.KindBool:
		return v.Number != 0
	case telemetry.KindString:
		return v.String
	case telemetry.KindStrings:
		var l []string
		json.Unmarshal([]byte(v.String), &l)
		if l == nil {
			l = []string{}
		}
		return l
	case telemetry.KindLocation:
		return map[string]float64{"latitude": v.Lat, "longitude": v.Lon, "hdop": v.HDOP}
	}
	return v.Number
}

// Eval evaluates the condition on value and its predecessor. An evaluation error (a division by zero, a
// missing map key, the cost limit) counts as false.
func (c *Condition) Eval(value, previous telemetry.Value) (bool, error) {
	out, _, err := c.prg.Eval(&condVars{celValue(value), celValue(previous)})
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	return ok && b, nil
}

// CheckTrigger validates a trigger against the catalogue and returns its compiled condition (kind signal).
// Bad input is a *FieldError.
func CheckTrigger(t *Trigger, cat *telemetry.Catalog) (*Condition, error) {
	switch t.Kind {
	case KindSignal:
		if t.Name != "" || t.SilenceSeconds != 0 {
			return nil, fieldErr("trigger", CodeInvalidTrigger, "a signal trigger takes signal, condition and cooldownSeconds only")
		}
		sig, ok := cat.Lookup(t.Signal)
		if !ok {
			return nil, fieldErr("trigger.signal", CodeUnknownSignal, "no signal %q in the catalogue (GET /v1/signals)", t.Signal)
		}
		if t.CooldownSeconds < 0 || t.CooldownSeconds > MaxCooldown {
			return nil, fieldErr("trigger.cooldownSeconds", CodeInvalidTrigger, "cooldownSeconds is 0 to %d", MaxCooldown)
		}
		if t.Condition == "" {
			return nil, fieldErr("trigger.condition", CodeInvalidCondition, "a signal trigger needs a condition (CEL over value and previousValue)")
		}
		c, err := CompileCondition(sig, t.Condition)
		if err != nil {
			return nil, fieldErr("trigger.condition", CodeInvalidCondition, "%v", err)
		}
		return c, nil
	case KindConnectivity:
		if t.Signal != "" || t.Condition != "" || t.CooldownSeconds != 0 || t.Name != "" {
			return nil, fieldErr("trigger", CodeInvalidTrigger, "a connectivity trigger takes silenceSeconds only")
		}
		if t.SilenceSeconds != 0 && (t.SilenceSeconds < MinSilence || t.SilenceSeconds > MaxSilence) {
			return nil, fieldErr("trigger.silenceSeconds", CodeInvalidTrigger, "silenceSeconds is %d to %d", MinSilence, MaxSilence)
		}
		return nil, nil
	case KindGrant:
		if t.Signal != "" || t.Condition != "" || t.CooldownSeconds != 0 || t.Name != "" || t.SilenceSeconds != 0 {
			return nil, fieldErr("trigger", CodeInvalidTrigger, "a grant trigger takes no other fields")
		}
		return nil, nil
	case KindEvent:
		if t.Signal != "" || t.Condition != "" || t.CooldownSeconds != 0 || t.SilenceSeconds != 0 {
			return nil, fieldErr("trigger", CodeInvalidTrigger, "an event trigger takes name only")
		}
		if !telemetry.KnownEvent(t.Name) {
			return nil, fieldErr("trigger.name", CodeInvalidTrigger, "no driving event %q: one of %s", t.Name, strings.Join(telemetry.EventNames, ", "))
		}
		return nil, nil
	case KindTrip:
		if t.Signal != "" || t.Condition != "" || t.CooldownSeconds != 0 || t.Name != "" || t.SilenceSeconds != 0 {
			return nil, fieldErr("trigger", CodeInvalidTrigger, "a trip trigger takes no other fields")
		}
		return nil, nil
	case "":
		return nil, fieldErr("trigger.kind", CodeInvalidTrigger, "a trigger needs a kind: signal, event, trip, connectivity or grant")
	}
	return nil, fieldErr("trigger.kind", CodeInvalidTrigger, "unknown trigger kind %q: signal, event, trip, connectivity or grant", t.Kind)
}

// TriggerPermissions returns the permissions (besides stream) an app needs for the trigger's events.
func TriggerPermissions(t *Trigger, cat *telemetry.Catalog) []string {
	switch t.Kind {
	case KindSignal:
		if sig, ok := cat.Lookup(t.Signal); ok {
			if sig.Permission == ledger.PermSignals {
				// Held with signals, or with this signal's own grant (signals:<name>).
				return []string{ledger.SignalPermission(sig.Name)}
			}
			return []string{sig.Permission}
		}
	case KindConnectivity:
		return []string{ledger.PermSignals}
	case KindEvent, KindTrip:
		// What the GraphQL API's events and segments need.
		return []string{ledger.PermInsights}
	}
	return nil
}
