package graphql

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
)

// The contract with DIMO's telemetry API: its schema, vendored in testdata/dimo (see the README there for
// the commit), must be served by Glovebox with nothing renamed, retyped or dropped. Glovebox may add.

// dimoLater lists DIMO's root queries that other work brings: they are left out of the comparison, and
// the test fails once one of them exists, so that it is taken off this list.
var dimoLater = map[string]string{}

func loadDIMO(t *testing.T) *ast.Schema {
	t.Helper()
	files, err := filepath.Glob("testdata/dimo/*.graphqls")
	if err != nil || len(files) == 0 {
		t.Fatal("no vendored DIMO schema", err)
	}
	var srcs []*ast.Source
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, &ast.Source{Name: f, Input: string(b)})
	}
	s, err := gqlparser.LoadSchema(srcs...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// compatible reports why a Glovebox type cannot stand where DIMO's is, or "". For an output (a field's
// type) Glovebox may be stricter (non-null where DIMO allows null); for an input (an argument, an input
// field) it may be looser (nullable where DIMO demands a value).
func compatible(dimo, gb *ast.Type, output bool) string {
	if dimo.NonNull && !gb.NonNull && output {
		return fmt.Sprintf("%s may be null where DIMO's %s may not", gb, dimo)
	}
	if !dimo.NonNull && gb.NonNull && !output {
		return fmt.Sprintf("%s demands a value where DIMO's %s does not", gb, dimo)
	}
	if (dimo.Elem == nil) != (gb.Elem == nil) {
		return fmt.Sprintf("%s is not %s", gb, dimo)
	}
	if dimo.Elem != nil {
		if why := compatible(dimo.Elem, gb.Elem, output); why != "" {
			return fmt.Sprintf("%s vs DIMO's %s: %s", gb, dimo, why)
		}
		return ""
	}
	if dimo.NamedType != gb.NamedType {
		return fmt.Sprintf("%s is not %s", gb, dimo)
	}
	return ""
}

// reachable returns the DIMO types a client can meet from the root queries it compares, by name.
func reachable(s *ast.Schema) []string {
	seen := map[string]bool{}
	var visit func(name string)
	visit = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		def := s.Types[name]
		for _, f := range def.Fields {
			visit(f.Type.Name())
			for _, a := range f.Arguments {
				visit(a.Type.Name())
			}
		}
	}
	seen["Query"] = true
	for _, f := range s.Query.Fields {
		if _, later := dimoLater[f.Name]; later || strings.HasPrefix(f.Name, "__") {
			continue
		}
		visit(f.Type.Name())
		for _, a := range f.Arguments {
			visit(a.Type.Name())
		}
	}
	var out []string
	for n := range seen {
		if !strings.HasPrefix(n, "__") {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// compareSchemas returns every difference between DIMO's schema and Glovebox's, in a stable order.
func compareSchemas(dimo, gb *ast.Schema) []string {
	var diffs []string
	add := func(format string, args ...any) { diffs = append(diffs, fmt.Sprintf(format, args...)) }
	for _, name := range reachable(dimo) {
		d := dimo.Types[name]
		g := gb.Types[name]
		if g == nil {
			add("type %s: missing", name)
			continue
		}
		if d.Kind != g.Kind {
			add("type %s: a %s, DIMO's is a %s", name, g.Kind, d.Kind)
			continue
		}
		switch d.Kind {
		case ast.Enum:
			for _, v := range d.EnumValues {
				if g.EnumValues.ForName(v.Name) == nil {
					add("enum %s: value %s missing", name, v.Name)
				}
			}
		case ast.Object, ast.InputObject:
			for _, f := range d.Fields {
				if _, later := dimoLater[f.Name]; later && name == "Query" {
					continue
				}
				gf := g.Fields.ForName(f.Name)
				if gf == nil {
					add("%s.%s: missing", name, f.Name)
					continue
				}
				if why := compatible(f.Type, gf.Type, d.Kind == ast.Object); why != "" {
					add("%s.%s: %s", name, f.Name, why)
				}
				if d.Kind == ast.InputObject {
					if dv, gv := defaultText(f.DefaultValue), defaultText(gf.DefaultValue); dv != gv {
						add("%s.%s: default %s, DIMO's is %s", name, f.Name, gv, dv)
					}
				}
				for _, a := range f.Arguments {
					ga := gf.Arguments.ForName(a.Name)
					if ga == nil {
						add("%s.%s(%s): argument missing", name, f.Name, a.Name)
						continue
					}
					if why := compatible(a.Type, ga.Type, false); why != "" {
						add("%s.%s(%s): %s", name, f.Name, a.Name, why)
					}
					if dv, gv := defaultText(a.DefaultValue), defaultText(ga.DefaultValue); dv != gv {
						add("%s.%s(%s): default %s, DIMO's is %s", name, f.Name, a.Name, gv, dv)
					}
				}
				if d.Kind == ast.Object {
					for _, ga := range gf.Arguments {
						if f.Arguments.ForName(ga.Name) == nil && ga.Type.NonNull && ga.DefaultValue == nil {
							add("%s.%s(%s): a required argument DIMO does not have", name, f.Name, ga.Name)
						}
					}
				}
			}
			if d.Kind == ast.InputObject {
				for _, gf := range g.Fields {
					if d.Fields.ForName(gf.Name) == nil && gf.Type.NonNull && gf.DefaultValue == nil {
						add("%s.%s: a required input field DIMO does not have", name, gf.Name)
					}
				}
			}
		}
	}
	return diffs
}

func defaultText(v *ast.Value) string {
	if v == nil {
		return "none"
	}
	return v.String()
}

func TestTheSchemaServesDIMOsTelemetryAPI(t *testing.T) {
	dimo, gb := loadDIMO(t), loadSchema(t)
	if diffs := compareSchemas(dimo, gb); len(diffs) > 0 {
		t.Fatalf("the first of %d differences from DIMO's schema: %s", len(diffs), diffs[0])
	}
	for name, who := range dimoLater {
		if dimo.Query.Fields.ForName(name) == nil {
			t.Errorf("DIMO's schema has no %s: take it off dimoLater", name)
		}
		if gb.Query.Fields.ForName(name) != nil {
			t.Errorf("Glovebox serves %s now (%s): take it off dimoLater so that it is compared", name, who)
		}
	}
}

// Every @mcpExample query in DIMO's schema validates against Glovebox's schema unchanged.
func TestDIMOsExampleQueriesValidate(t *testing.T) {
	dimo, gb := loadDIMO(t), loadSchema(t)
	n := 0
	for _, f := range dimo.Query.Fields {
		if _, later := dimoLater[f.Name]; later {
			continue
		}
		for _, d := range f.Directives.ForNames("mcpExample") {
			q := d.Arguments.ForName("query").Value.Raw
			n++
			doc, err := parser.ParseQuery(&ast.Source{Input: q})
			if err != nil {
				t.Fatalf("%s: %v", f.Name, err)
			}
			if errs := validator.Validate(gb, doc); len(errs) > 0 {
				t.Errorf("DIMO's example of %s does not validate: %v\n%s", f.Name, errs, q)
			}
		}
	}
	if n < 5 {
		t.Errorf("only %d examples found", n)
	}
}

// The comparison itself catches each kind of difference.
func TestTheComparisonNamesTheFirstDifference(t *testing.T) {
	base := `scalar Time
type Query { q(tokenId: Int!, limit: Int = 100, f: In): [R!]! }
type R { a: Int! b: String c: [Time!] e: E }
input In { x: Int = 5 y: String }
enum E { A B }`
	cases := []struct {
		name, gb, want string
	}{
		{"the same", base, ""},
		{"a stricter output and a looser argument", strings.NewReplacer("a: Int!", "a: Int!", "b: String", "b: String!", "tokenId: Int!", "tokenId: Int").Replace(base), ""},
		{"an added optional argument", strings.Replace(base, "f: In)", "f: In, extra: Int)", 1), ""},
		{"an added required argument", strings.Replace(base, "f: In)", "f: In, extra: Int!)", 1), "Query.q(extra): a required argument DIMO does not have"},
		{"a missing field", strings.Replace(base, "e: E", "", 1), "R.e: missing"},
		{"a nullable output", strings.Replace(base, "a: Int!", "a: Int", 1), "R.a: Int may be null where DIMO's Int! may not"},
		{"a retyped field", strings.Replace(base, "b: String", "b: Int", 1), "R.b: Int is not String"},
		{"a list element nullable", strings.Replace(base, "c: [Time!]", "c: [Time]", 1), "R.c: [Time] vs DIMO's [Time!]: Time may be null where DIMO's Time! may not"},
		{"a missing enum value", strings.Replace(base, "enum E { A B }", "enum E { A }", 1), "enum E: value B missing"},
		{"another default", strings.Replace(base, "limit: Int = 100", "limit: Int = 50", 1), "Query.q(limit): default 50, DIMO's is 100"},
		{"another input default", strings.Replace(base, "x: Int = 5", "x: Int", 1), "In.x: default none, DIMO's is 5"},
		{"a required input field", strings.Replace(base, "y: String", "y: String!", 1), "In.y: String! demands a value where DIMO's String does not"},
		{"a missing type", strings.Replace(base, "enum E { A B }", "scalar E", 1), "type E: a SCALAR, DIMO's is a ENUM"},
	}
	dimo := gqlparser.MustLoadSchema(&ast.Source{Input: base})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			gb, err := gqlparser.LoadSchema(&ast.Source{Input: c.gb})
			if err != nil {
				t.Fatal(err)
			}
			diffs := compareSchemas(dimo, gb)
			got := ""
			if len(diffs) > 0 {
				got = diffs[0]
			}
			if got != c.want {
				t.Errorf("got %q, want %q (all: %v)", got, c.want, diffs)
			}
			if c.want == "" && !slices.Equal(diffs, nil) {
				t.Errorf("differences: %v", diffs)
			}
		})
	}
}
