package enginebench

import (
	"fmt"
	"strings"
	"time"
)

// Table formats results as a Markdown table, one column per engine.
func Table(results []*Result) string {
	var b strings.Builder
	row := func(label string, cell func(r *Result) string) {
		b.WriteString("| " + label + " |")
		for _, r := range results {
			b.WriteString(" " + cell(r) + " |")
		}
		b.WriteString("\n")
	}
	row("figure", func(r *Result) string { return r.Engine })
	b.WriteString("|---|" + strings.Repeat("---|", len(results)) + "\n")
	row("values", func(r *Result) string { return fmt.Sprint(r.Values) })
	row("write, values/s (one writer, incl. roll-ups)", func(r *Result) string { return fmt.Sprintf("%.0f", r.ValuesPerSec) })
	row("write time, s", func(r *Result) string { return fmt.Sprintf("%.1f", r.WriteSeconds) })
	row("bytes on disk after checkpoint", func(r *Result) string { return fmt.Sprint(r.Bytes) })
	row("bytes per value", func(r *Result) string { return fmt.Sprintf("%.2f", r.BytesPerValue) })
	row("RSS growth writing, MB", func(r *Result) string {
		if r.RSSGrowthMB < 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.0f", r.RSSGrowthMB)
	})
	row("values read back bit for bit", func(r *Result) string {
		if r.Lossless {
			return "yes"
		}
		return "NO: " + r.Mismatch
	})
	if len(results) > 0 {
		for i, q := range results[0].Queries {
			row(q.Name+", p50 / p99", func(r *Result) string {
				if i >= len(r.Queries) {
					return ""
				}
				return fmt.Sprintf("%s / %s", ms(r.Queries[i].P50), ms(r.Queries[i].P99))
			})
			row(q.Name+", values not byte-identical to the reference", func(r *Result) string {
				if i >= len(r.Queries) {
					return ""
				}
				if r.Queries[i].Differ == 0 {
					return "0"
				}
				return fmt.Sprintf("%d (%s)", r.Queries[i].Differ, r.Queries[i].Example)
			})
		}
	}
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
