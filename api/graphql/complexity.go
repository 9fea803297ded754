package graphql

import (
	"context"
	"strings"
	"time"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/glovebox/glovebox/api/graphql/internal/exec"
)

// An operation's complexity is what gqlgen counts (each field 1 plus its subfields, aliases counted each
// time), with three additions that keep the size of an answer inside MaxComplexity:
//
//   - Introspection counts too. gqlgen leaves __schema out entirely and counts __type's lists as one
//     item, so a thousand aliased __schema selections cost nothing. Here both cost one unit per
//     IntrospectionValuesPerUnit values of the answer they would produce, counted exactly against this
//     schema (lists as long as they are, ofType as present).
//   - signals costs its subfields once per started BucketsPerUnit buckets of the interval asked for, so
//     that many aliases over many buckets do not pass as one.
//   - rawRecords costs its subfields once per started RecordsPerUnit records of the page asked for.
const (
	// IntrospectionValuesPerUnit is how many values (objects and scalars) of an introspection answer
	// count as one unit of complexity: the standard introspection query of this schema costs about 200.
	IntrospectionValuesPerUnit = 64
	// BucketsPerUnit is how many buckets of a signals query count as one pass over its fields: a chart
	// of 8,640 five-minute buckets with seven fields costs 1 + 8 × 68 = 545.
	BucketsPerUnit = 128
	// RecordsPerUnit is how many records of a rawRecords page count as one pass over its fields.
	RecordsPerUnit = 20
)

// complexityRoot gives signals and rawRecords their costs.
func complexityRoot() exec.ComplexityRoot {
	var c exec.ComplexityRoot
	c.Query.Signals = func(child, _ int, interval string, from, to time.Time, _ *exec.SignalFilter) int {
		return 1 + child*perUnit(buckets(interval, from, to), BucketsPerUnit)
	}
	c.Query.RawRecords = func(child, _ int, _, _ time.Time, first *int, _ *string) int {
		n := DefaultRawPageSize
		if first != nil {
			n = *first
		}
		if n < 0 || n > MaxRawPageSize {
			n = 1 // the resolver refuses it with BAD_REQUEST
		}
		return 1 + child*perUnit(n, RecordsPerUnit)
	}
	return c
}

// buckets is how many intervals a signals query covers (at least 1; 1 for arguments the resolver refuses).
func buckets(interval string, from, to time.Time) int {
	d, err := time.ParseDuration(interval)
	if err != nil || d < time.Second || !from.Before(to) {
		return 1
	}
	n := int((to.Sub(from) + d - 1) / d)
	if n > MaxBuckets {
		return 1 // the resolver refuses it with BAD_REQUEST
	}
	return n
}

// perUnit is ceil(n / per), at least 1.
func perUnit(n, per int) int {
	if n <= per {
		return 1
	}
	return (n + per - 1) / per
}

// complexityLimit refuses operations whose complexity (operationComplexity) exceeds MaxComplexity with
// TOO_COMPLEX, before anything is resolved.
type complexityLimit struct{ es graphql.ExecutableSchema }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = &complexityLimit{}

func (*complexityLimit) ExtensionName() string { return "ComplexityLimit" }
func (c *complexityLimit) Validate(schema graphql.ExecutableSchema) error {
	c.es = schema
	return nil
}

func (c *complexityLimit) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	if n := operationComplexity(ctx, c.es, opCtx.Operation, opCtx.Variables); n > MaxComplexity {
		return codedError(CodeTooComplex, "the operation has complexity %d; at most %d is allowed", n, MaxComplexity)
	}
	return nil
}

// operationComplexity is gqlgen's count of op plus its introspection, saturating at MaxComplexity+1.
func operationComplexity(ctx context.Context, es graphql.ExecutableSchema, op *ast.OperationDefinition, vars map[string]any) int {
	n := complexity.Calculate(ctx, es, op, vars, complexity.WithIgnoreFields(map[string]struct{}{"Query.__type": {}}))
	if n > MaxComplexity {
		return n
	}
	w := introspectionWalker{s: es.Schema(), vars: vars, budget: (MaxComplexity + 1 - n) * IntrospectionValuesPerUnit}
	w.root(op.SelectionSet, map[string]bool{})
	return n + perUnit(w.values, IntrospectionValuesPerUnit)*boolInt(w.values > 0)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// introspectionWalker counts the values an introspection answer would hold, stopping once it passes
// budget (so a query asking for a million of them costs a bounded walk).
type introspectionWalker struct {
	s      *ast.Schema
	vars   map[string]any
	budget int
	values int
}

func (w *introspectionWalker) over() bool { return w.values > w.budget }

// root walks the operation's top level (and its fragments) for __schema and __type.
func (w *introspectionWalker) root(set ast.SelectionSet, visiting map[string]bool) {
	for _, sel := range set {
		if w.over() {
			return
		}
		switch s := sel.(type) {
		case *ast.Field:
			switch s.Name {
			case "__schema":
				w.values++
				w.walk(s.SelectionSet, w.s, visiting)
			case "__type":
				w.values++
				name, _ := s.ArgumentMap(w.vars)["name"].(string)
				if d := w.s.Types[name]; d != nil {
					w.walk(s.SelectionSet, d, visiting)
				}
			}
		case *ast.InlineFragment:
			w.root(s.SelectionSet, visiting)
		case *ast.FragmentSpread:
			if s.Definition != nil && !visiting[s.Name] {
				visiting[s.Name] = true
				w.root(s.Definition.SelectionSet, visiting)
				delete(visiting, s.Name)
			}
		}
	}
}

// walk counts the answer of set selected on obj, one of *ast.Schema (__Schema), *ast.Definition
// (__Type), *ast.FieldDefinition (__Field, or __InputValue for an input object's field),
// *ast.ArgumentDefinition (__InputValue), *ast.EnumValueDefinition (__EnumValue) and
// *ast.DirectiveDefinition (__Directive).
func (w *introspectionWalker) walk(set ast.SelectionSet, obj any, visiting map[string]bool) {
	for _, sel := range set {
		if w.over() {
			return
		}
		switch s := sel.(type) {
		case *ast.Field:
			w.values++
			for _, child := range w.children(obj, s) {
				w.values++
				w.walk(s.SelectionSet, child, visiting)
				if w.over() {
					return
				}
			}
		case *ast.InlineFragment:
			w.walk(s.SelectionSet, obj, visiting)
		case *ast.FragmentSpread:
			if s.Definition != nil && !visiting[s.Name] {
				visiting[s.Name] = true
				w.walk(s.Definition.SelectionSet, obj, visiting)
				delete(visiting, s.Name)
			}
		}
	}
}

// children returns the objects field f of obj answers with (none for a scalar or a null).
func (w *introspectionWalker) children(obj any, f *ast.Field) []any {
	if len(f.SelectionSet) == 0 {
		return nil
	}
	typ := func(t *ast.Type) []any {
		if t == nil || w.s.Types[t.Name()] == nil {
			return nil
		}
		return []any{w.s.Types[t.Name()]}
	}
	def := func(d *ast.Definition) []any {
		if d == nil {
			return nil
		}
		return []any{d}
	}
	switch o := obj.(type) {
	case *ast.Schema:
		switch f.Name {
		case "types":
			out := make([]any, 0, len(o.Types))
			for _, d := range o.Types {
				out = append(out, d)
			}
			return out
		case "queryType":
			return def(o.Query)
		case "mutationType":
			return def(o.Mutation)
		case "subscriptionType":
			return def(o.Subscription)
		case "directives":
			out := make([]any, 0, len(o.Directives))
			for _, d := range o.Directives {
				out = append(out, d)
			}
			return out
		}
	case *ast.Definition:
		var out []any
		switch f.Name {
		case "fields", "inputFields":
			for _, fd := range o.Fields {
				if !strings.HasPrefix(fd.Name, "__") {
					out = append(out, fd)
				}
			}
		case "interfaces":
			for _, name := range o.Interfaces {
				out = append(out, typ(&ast.Type{NamedType: name})...)
			}
		case "possibleTypes":
			for _, d := range w.s.GetPossibleTypes(o) {
				out = append(out, d)
			}
		case "enumValues":
			for _, v := range o.EnumValues {
				out = append(out, v)
			}
		case "ofType":
			// A wrapped type's ofType chain is as long as its wrappers; counting the named type again
			// at every level the query asks for is an upper bound.
			out = append(out, o)
		}
		return out
	case *ast.FieldDefinition:
		switch f.Name {
		case "args":
			out := make([]any, 0, len(o.Arguments))
			for _, a := range o.Arguments {
				out = append(out, a)
			}
			return out
		case "type":
			return typ(o.Type)
		}
	case *ast.ArgumentDefinition:
		if f.Name == "type" {
			return typ(o.Type)
		}
	case *ast.DirectiveDefinition:
		if f.Name == "args" {
			out := make([]any, 0, len(o.Arguments))
			for _, a := range o.Arguments {
				out = append(out, a)
			}
			return out
		}
	}
	return nil
}
