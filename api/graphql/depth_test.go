package graphql

import (
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

func TestDepthCountsFieldsThroughFragmentsButNotOfType(t *testing.T) {
	for _, tc := range []struct {
		query string
		depth int
	}{
		{`{ a }`, 1},
		{`{ a { b { c } } d }`, 3},
		{`{ a { ... on X { b { c } } } }`, 3},
		{`{ a { ...F } } fragment F on X { b { c { d } } }`, 4},
		{`{ a { ofType { ofType { ofType { name } } } } }`, 2},
		{"{ " + strings.Repeat("a { ", 11) + "b" + strings.Repeat(" }", 11) + " }", 12},
	} {
		doc, err := parser.ParseQuery(&ast.Source{Input: tc.query})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range doc.Fragments {
			for _, op := range doc.Operations {
				link(op.SelectionSet, f)
			}
		}
		if got, _ := depth(doc.Operations[0].SelectionSet, map[string]bool{}); got != tc.depth {
			t.Errorf("%s: depth %d, want %d", tc.query, got, tc.depth)
		}
	}
}

// link points the spreads of f's name at f, as validation does.
func link(set ast.SelectionSet, f *ast.FragmentDefinition) {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			link(s.SelectionSet, f)
		case *ast.InlineFragment:
			link(s.SelectionSet, f)
		case *ast.FragmentSpread:
			if s.Name == f.Name {
				s.Definition = f
			}
		}
	}
}
