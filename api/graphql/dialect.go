package graphql

import (
	"strconv"
	"strings"

	"github.com/glovebox/glovebox/telemetry"
)

// The queries are written for SQLite, where one dynamically typed column val holds every kind of value.
// PostgreSQL (store/postgres) keeps a column per kind (num, str, loc) and numbers its parameters; rebind
// turns a query into its PostgreSQL form for a signal of the given kind.
func (q *queryResolver) rebind(sqlText string, kind telemetry.Kind) string {
	if !q.cfg.Postgres {
		return sqlText
	}
	col := "num"
	switch kind {
	case telemetry.KindString, telemetry.KindStrings:
		col = "str"
	case telemetry.KindLocation:
		col = "loc"
	}
	sqlText = strings.ReplaceAll(sqlText, "s.val", "s."+col)
	// PostgreSQL groups by the name only where the query says so (SQLite takes it from the join).
	sqlText = strings.ReplaceAll(sqlText, "GROUP BY s.name", "GROUP BY s.name, n.name")
	return numberParams(sqlText)
}

// numberParams replaces each ? with $1, $2, … (the queries have no ? inside string literals).
func numberParams(sqlText string) string {
	var b strings.Builder
	n := 0
	for _, r := range sqlText {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
