package graphql

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/glovebox/glovebox/api/graphql/internal/exec"
	"github.com/glovebox/glovebox/api/graphql/internal/schemagen"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

func loadSchema(t *testing.T) *ast.Schema {
	t.Helper()
	files, err := filepath.Glob("schema/*.graphqls")
	if err != nil || len(files) == 0 {
		t.Fatal("no schema files", err)
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

func TestTheSignalsSchemaIsCurrent(t *testing.T) {
	got, err := os.ReadFile("schema/signals.graphqls")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(schemagen.Signals(telemetry.DefaultCatalog)) {
		t.Error("schema/signals.graphqls is stale: run go generate ./api/graphql")
	}
}

// The gqlgen output is current when the schema sources compiled into it are the files on disk.
func TestTheGeneratedCodeIsCurrent(t *testing.T) {
	compiled := map[string]string{}
	for _, def := range exec.NewExecutableSchema(exec.Config{}).Schema().Types {
		if def.Position != nil && def.Position.Src != nil && !def.Position.Src.BuiltIn {
			compiled[filepath.Base(def.Position.Src.Name)] = def.Position.Src.Input
		}
	}
	files, _ := filepath.Glob("schema/*.graphqls")
	if len(compiled) != len(files) {
		t.Errorf("the generated code holds %d schema files, schema/ has %d: run go generate ./api/graphql", len(compiled), len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if compiled[filepath.Base(f)] != string(b) {
			t.Errorf("%s differs from the schema in the generated code: run go generate ./api/graphql", f)
		}
	}
}

// Deny by default: every field that reads vehicle data declares how it is authorized. Query fields,
// SignalCollection fields and SignalAggregations fields carry exactly one of @requires (a known
// permission), @perSignal, @vehicleReader or @owner (the last two on Query only); types reached only
// under such a Query field are filtered by its resolver.
func TestEveryDataFieldDeclaresItsPermission(t *testing.T) {
	s := loadSchema(t)
	check := func(typ string, allowed ...string) {
		def := s.Types[typ]
		if def == nil {
			t.Fatalf("no type %s", typ)
		}
		for _, f := range def.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			var has []string
			for _, d := range []string{"requires", "perSignal", "vehicleReader", "owner"} {
				if f.Directives.ForName(d) != nil {
					has = append(has, d)
				}
			}
			switch {
			case len(has) > 1:
				t.Errorf("%s.%s has several authorization directives: %v", typ, f.Name, has)
			case len(has) == 0:
				t.Errorf("%s.%s declares no permission: add @requires or @perSignal", typ, f.Name)
			case !slices.Contains(allowed, has[0]):
				t.Errorf("%s.%s: @%s is not for %s fields", typ, f.Name, has[0], typ)
			case has[0] == "requires":
				p := f.Directives.ForName("requires").Arguments.ForName("permission")
				if p == nil || !ledger.KnownPermission(p.Value.Raw) {
					t.Errorf("%s.%s requires an unknown permission", typ, f.Name)
				}
			}
			if f.Directives.ForName("aggregate") != nil && f.Directives.ForName("requires") == nil {
				t.Errorf("%s.%s is @aggregate without @requires", typ, f.Name)
			}
		}
	}
	check("Query", "requires", "perSignal", "vehicleReader", "owner")
	check("SignalCollection", "requires", "perSignal")
	// Subscriptions push to apps that hold stream (the fields under them decide the rest, as in queries).
	check("Subscription", "requires")
	for _, f := range s.Types["Subscription"].Fields {
		if p := f.Directives.ForName("requires"); p != nil && p.Arguments.ForName("permission").Value.Raw != ledger.PermStream {
			t.Errorf("Subscription.%s must require %s", f.Name, ledger.PermStream)
		}
	}
	check("SignalAggregations", "requires", "perSignal")

	// Every signal with history has its aggregation field, with the catalogue's permission, and reads its
	// value by alias.
	sa := s.Types["SignalAggregations"]
	for _, sig := range telemetry.DefaultCatalog.Signals {
		enum, _, ok := schemagen.AggregationTypeOf(sig.Kind)
		f := sa.Fields.ForName(sig.Name)
		switch {
		case !ok && f != nil:
			t.Errorf("SignalAggregations.%s exists, but %s has no history", sig.Name, sig.Kind)
		case !ok:
		case f == nil:
			t.Errorf("signal %s has no SignalAggregations field", sig.Name)
		case f.Directives.ForName("requires").Arguments.ForName("permission").Value.Raw != sig.Permission:
			t.Errorf("SignalAggregations.%s does not require %q", sig.Name, sig.Permission)
		case f.Directives.ForName("aggregate") == nil:
			t.Errorf("SignalAggregations.%s lacks @aggregate", sig.Name)
		case f.Arguments.ForName("agg") == nil || f.Arguments.ForName("agg").Type.String() != enum+"!":
			t.Errorf("SignalAggregations.%s: agg must be %s!", sig.Name, enum)
		}
	}
	if f := sa.Fields.ForName(schemagen.ApproximateLocationField); f == nil ||
		f.Directives.ForName("requires").Arguments.ForName("permission").Value.Raw != ledger.PermLocationApproximate {
		t.Errorf("SignalAggregations.%s must require %s", schemagen.ApproximateLocationField, ledger.PermLocationApproximate)
	}

	// Every catalogue signal has its field, with the catalogue's permission.
	sc := s.Types["SignalCollection"]
	for _, sig := range telemetry.DefaultCatalog.Signals {
		f := sc.Fields.ForName(sig.Name)
		if f == nil {
			t.Errorf("signal %s has no field", sig.Name)
			continue
		}
		if got := f.Directives.ForName("requires").Arguments.ForName("permission").Value.Raw; got != sig.Permission {
			t.Errorf("%s requires %q, the catalogue says %q", sig.Name, got, sig.Permission)
		}
	}
	if f := sc.Fields.ForName(schemagen.ApproximateLocationField); f == nil ||
		f.Directives.ForName("requires").Arguments.ForName("permission").Value.Raw != ledger.PermLocationApproximate {
		t.Errorf("%s must require %s", schemagen.ApproximateLocationField, ledger.PermLocationApproximate)
	}
}
