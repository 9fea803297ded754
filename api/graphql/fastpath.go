package graphql

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator"

	"github.com/glovebox/glovebox/telemetry"
)

// The fast path answers the most common large request, a chart's
//
//	{ signals(tokenId: …, interval: …, from: …, to: …) { timestamp speed(agg: AVG) … } }
//
// without gqlgen's per-field execution, which for 10,000 buckets of a few fields costs several times the
// query itself (each field of each row gets its own context, argument parsing and directive chain). It
// takes only documents that are exactly one query operation selecting only signals, without fragments,
// directives or filter, whose fields are timestamp and number or string signals (locations, with their
// sub-selections, go to gqlgen), and only after the document has been validated against the schema, its
// variables coerced and its complexity checked as gqlgen would. It calls the same resolver code
// (queryResolver.signals: the same checks, the same access-log entry) and writes the answer with gqlgen's
// own scalar marshalers, so the bytes are gqlgen's: TestFastPathAnswersAsGqlgen compares both executors
// on every kind of request and caller. Anything else, including any request it has doubts about, is
// passed to gqlgen untouched.
type fastPath struct {
	q       *queryResolver
	es      graphql.ExecutableSchema
	present graphql.ErrorPresenterFunc
	plans   *lru.LRU[*signalsPlan]
	next    http.Handler
}

// fastPathServed counts the requests the fast path answered (for tests).
var fastPathServed atomic.Int64

// signalsPlan is what the fast path needs of one query text; ok is false for a text it does not take.
type signalsPlan struct {
	ok     bool
	op     *ast.OperationDefinition
	field  *ast.Field
	fields []planField
}

type planField struct {
	alias     string
	key       string // "alias":
	timestamp bool
	signal    telemetry.Signal
	number    bool       // a Float field (numbers and booleans); otherwise a String field
	agg       *ast.Value // the agg argument
}

func (p *fastPath) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.serve(w, r) {
		p.next.ServeHTTP(w, r)
	}
}

// serve answers r and returns true, or returns false having written nothing (r's body is restored).
func (p *fastPath) serve(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost || r.Header.Get("Upgrade") != "" {
		return false
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return false
	}
	switch r.Header.Get("Accept") {
	case "", "*/*", "application/json":
	default:
		return false
	}
	if r.Body == nil {
		return false
	}
	body, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return false
	}
	var params struct {
		Query         string         `json:"query"`
		OperationName string         `json:"operationName"`
		Variables     map[string]any `json:"variables"`
		Extensions    map[string]any `json:"extensions"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&params); err != nil || len(params.Extensions) > 0 || params.Query == "" {
		return false
	}
	plan := p.plan(r.Context(), params.Query)
	if !plan.ok || (params.OperationName != "" && params.OperationName != plan.op.Name) {
		return false
	}
	schema := p.es.Schema()
	vars, verr := validator.VariableValues(schema, plan.op, params.Variables)
	if verr != nil {
		return false
	}
	ctx := r.Context()
	if operationComplexity(ctx, p.es, plan.op, vars) > MaxComplexity {
		return false
	}
	args := plan.field.ArgumentMap(vars)
	if args["filter"] != nil {
		return false
	}
	tokenID, err1 := graphql.UnmarshalInt(args["tokenId"])
	interval, err2 := graphql.UnmarshalString(args["interval"])
	from, err3 := graphql.UnmarshalTime(args["from"])
	to, err4 := graphql.UnmarshalTime(args["to"])
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return false
	}
	var ws []wanted
	for _, f := range plan.fields {
		if f.timestamp {
			continue
		}
		v, err := f.agg.Value(vars)
		agg, ok := v.(string)
		if err != nil || !ok {
			return false
		}
		ws = append(ws, wanted{alias: f.alias, signal: f.signal, agg: agg, perm: f.signal.Permission})
	}
	fastPathServed.Add(1)
	ctx = graphql.WithFieldContext(ctx, &graphql.FieldContext{Object: "Query", Field: graphql.CollectedField{Field: plan.field},
		Args: args, IsResolver: true})
	if tokenID >= 0 {
		ctx = (*resolver)(p.q).decideSignals(ctx, uint64(tokenID)) // what @perSignal does in gqlgen's executor
	}
	t, err := p.q.signals(ctx, tokenID, interval, from, to, nil, func(context.Context) ([]wanted, error) { return ws, nil })
	var resp graphql.Response
	var data bytes.Buffer
	data.WriteString(`{"` + plan.field.Alias + `":`)
	if err != nil {
		resp.Errors = gqlerror.List{p.present(ctx, graphql.ErrorOnPath(ctx, graphql.AddFieldLocationToError(ctx, err)))}
		data.WriteString("null")
	} else {
		writeRows(&data, plan.fields, t)
	}
	data.WriteByte('}')
	resp.Data = data.Bytes()
	w.Header().Set("Content-Type", "application/json")
	if resp.Errors == nil && !needsEscaping(resp.Data) {
		// What json.Marshal(&resp) writes: {"data":…}, the raw data compacted (it is compact already) and
		// with <, >, &, U+2028 and U+2029 escaped (there are none).
		w.Write([]byte(`{"data":`))
		w.Write(resp.Data)
		w.Write([]byte(`}`))
		return true
	}
	b, err := json.Marshal(&resp)
	if err != nil {
		w.Header().Del("Content-Type")
		return false
	}
	w.Write(b)
	return true
}

// writeRows writes the rows of a signals answer as gqlgen does.
func writeRows(w *bytes.Buffer, fields []planField, t *table) {
	w.WriteByte('[')
	first := true
	for b := range len(t.has) { // no has: no values, no rows
		if !t.has[b] {
			continue
		}
		if !first {
			w.WriteByte(',')
		}
		first = false
		w.WriteByte('{')
		vi := 0 // the index of the next signal field among the table's fields
		for j, f := range fields {
			if j > 0 {
				w.WriteByte(',')
			}
			w.WriteString(f.key)
			if f.timestamp {
				graphql.MarshalTime(t.w.bucketStart(int64(b))).MarshalGQL(w)
				continue
			}
			switch v := t.vals[b*len(t.fields)+vi].(type) {
			case *float64:
				if v == nil || math.IsInf(*v, 0) || math.IsNaN(*v) {
					w.WriteString("null") // gqlgen fails an infinite field; no stored value is one
				} else {
					// What gqlgen's MarshalFloatContext writes (fmt's %g), without fmt.
					w.Write(strconv.AppendFloat(w.AvailableBuffer(), *v, 'g', -1, 64))
				}
			case *string:
				if v == nil {
					w.WriteString("null")
				} else {
					graphql.MarshalString(*v).MarshalGQL(w)
				}
			default:
				w.WriteString("null")
			}
			vi++
		}
		w.WriteByte('}')
	}
	w.WriteByte(']')
}

// plan parses and validates a query text and decides whether the fast path takes it; decisions are
// cached by text.
func (p *fastPath) plan(ctx context.Context, query string) *signalsPlan {
	if pl, ok := p.plans.Get(ctx, query); ok {
		return pl
	}
	pl := &signalsPlan{}
	defer p.plans.Add(ctx, query, pl)
	schema := p.es.Schema()
	doc, errs := gqlparser.LoadQuery(schema, query)
	if len(errs) > 0 || len(doc.Operations) != 1 || len(doc.Fragments) > 0 {
		return pl
	}
	op := doc.Operations[0]
	if op.Operation != ast.Query || len(op.Directives) > 0 || len(op.SelectionSet) != 1 {
		return pl
	}
	field, ok := op.SelectionSet[0].(*ast.Field)
	if !ok || field.Name != "signals" || len(field.Directives) > 0 || len(field.SelectionSet) == 0 {
		return pl
	}
	aggType := schema.Types["SignalAggregations"]
	seen := map[string]bool{}
	for _, sel := range field.SelectionSet {
		f, ok := sel.(*ast.Field)
		if !ok || len(f.Directives) > 0 || seen[f.Alias] || len(f.SelectionSet) > 0 {
			return pl
		}
		seen[f.Alias] = true
		if f.Name == "timestamp" {
			pl.fields = append(pl.fields, planField{alias: f.Alias, key: `"` + f.Alias + `":`, timestamp: true})
			continue
		}
		def := aggType.Fields.ForName(f.Name)
		s, known := p.q.cfg.Catalog.Lookup(f.Name)
		if def == nil || !known || len(f.Arguments) != 1 || f.Arguments[0].Name != "agg" {
			return pl
		}
		switch def.Type.NamedType {
		case "Float", "String":
		default:
			return pl
		}
		pl.fields = append(pl.fields, planField{alias: f.Alias, key: `"` + f.Alias + `":`, signal: *s, number: def.Type.NamedType == "Float",
			agg: f.Arguments[0].Value})
	}
	pl.ok, pl.op, pl.field = true, op, field
	return pl
}

// needsEscaping reports whether json.Marshal would escape something in the compact JSON b.
func needsEscaping(b []byte) bool {
	return bytes.IndexByte(b, '<') >= 0 || bytes.IndexByte(b, '>') >= 0 || bytes.IndexByte(b, '&') >= 0 ||
		bytes.Contains(b, []byte("\u2028")) || bytes.Contains(b, []byte("\u2029"))
}
