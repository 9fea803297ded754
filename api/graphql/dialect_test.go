package graphql

import (
	"testing"

	"github.com/glovebox/glovebox/telemetry"
)

func TestQueriesAreRewrittenForPostgreSQLOnly(t *testing.T) {
	pg := &queryResolver{cfg: Config{Postgres: true}}
	lite := &queryResolver{cfg: Config{}}
	for _, tc := range []struct {
		name, in string
		kind     telemetry.Kind
		want     string
	}{
		{"numbers read num and parameters are numbered", `SELECT MIN(s.val) FROM signals s WHERE s.vehicle = ? AND s.time >= ?`, telemetry.KindNumber,
			`SELECT MIN(s.num) FROM signals s WHERE s.vehicle = $1 AND s.time >= $2`},
		{"strings read str", `SELECT s.val, COUNT(*) FROM signals s GROUP BY b, s.val`, telemetry.KindString,
			`SELECT s.str, COUNT(*) FROM signals s GROUP BY b, s.str`},
		{"locations read loc", `SELECT s.val FROM signals s WHERE s.name = ?`, telemetry.KindLocation,
			`SELECT s.loc FROM signals s WHERE s.name = $1`},
		{"a name grouped by id is grouped by name too", `SELECT n.name FROM signals s JOIN names n ON n.id = s.name GROUP BY s.name`, telemetry.KindNumber,
			`SELECT n.name FROM signals s JOIN names n ON n.id = s.name GROUP BY s.name, n.name`},
	} {
		if got := pg.rebind(tc.in, tc.kind); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
		if got := lite.rebind(tc.in, tc.kind); got != tc.in {
			t.Errorf("%s: SQLite's query was changed to %s", tc.name, got)
		}
	}
}
