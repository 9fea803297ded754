package bench

import (
	"context"
	"os"
	"testing"
	"time"
)

// BenchmarkExport runs the export benchmark once per iteration (-benchtime=1x): a month of one car at
// 1 Hz × 10 signals (2.6 M values) exported over HTTP (time, heap growth) and verified, then erased by
// its owner in one sweep while another car's device sends (time, longest batch, slowest ingest request).
func BenchmarkExport(b *testing.B) {
	for i := 0; i < b.N; i++ {
		opts := ExportOptions{}
		if testing.Verbose() {
			opts.Progress = os.Stderr
		}
		rep, err := Export(context.Background(), opts)
		if err != nil {
			b.Fatal(err)
		}
		if testing.Verbose() {
			rep.Print(os.Stderr)
		}
		b.ReportMetric(rep.Duration.Seconds(), "export-s")
		b.ReportMetric(float64(rep.HeapPeak-min(rep.HeapPeak, rep.HeapBefore))/1e6, "export-heap-growth-MB")
		b.ReportMetric(rep.VerifyDuration.Seconds(), "verify-s")
		b.ReportMetric(rep.DeleteDuration.Seconds(), "delete-s")
		b.ReportMetric(float64(rep.LongestBatch)/1e6, "longest-batch-ms")
		b.ReportMetric(float64(rep.LongestIngest)/1e6, "longest-ingest-ms")
	}
}

// TestExportBenchmarkRuns keeps the export benchmark working on a day at one sample every 10 minutes:
// every record exported and verified, then all of it erased while ingest goes on, every record of the
// other car accepted and none of its values erased.
func TestExportBenchmarkRuns(t *testing.T) {
	rep, err := Export(context.Background(), ExportOptions{Days: 1, Interval: 10 * time.Minute, PerRecord: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 144 || rep.Values != 1440 || rep.VerifiedRecords != 144 || rep.VerifiedValues != 1440 || rep.Bytes == 0 {
		t.Fatalf("export: %+v", rep)
	}
	if rep.Deleted.Records != 144 || rep.Deleted.Values != 1440 || rep.RemainingValues != 0 || rep.Batches == 0 || rep.DeleteDuration == 0 {
		t.Fatalf("deletion: %+v", rep)
	}
	// A sweep this small may end between two requests: only the second before it surely saw some.
	if rep.IngestBefore == 0 || rep.IngestRejected != 0 {
		t.Fatalf("ingest during the deletion: %+v", rep)
	}
}
