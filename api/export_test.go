package api_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/glovebox/glovebox/export"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

type exportAnswer struct {
	status int
	header http.Header
	body   []byte
}

func getExport(t *testing.T, url, token string, headers map[string]string) exportAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return exportAnswer{resp.StatusCode, resp.Header, b}
}

func errorCode(b []byte) string {
	var e struct {
		Error struct{ Code string }
	}
	json.Unmarshal(b, &e)
	return e.Error.Code
}

// exportNode is a node with one car of owner's that sent records for ten minutes.
func exportNode(t *testing.T) (n *testnode.Node, owner testnode.Key, car uint64, logKey string) {
	var clock atomicTime
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	clock.set(start)
	n = testnode.Start(t, testnode.Options{Now: clock.get})
	owner = testnode.NewKey(t)
	car = n.Vehicle(t, owner)
	dev := n.PairedDevice(t, owner, car, ledger.KindHardware)
	var subs []telemetry.Submission
	for i := range 600 {
		at := start.Add(time.Duration(i+1) * time.Second)
		subs = append(subs, testnode.Record(t, dev, car, "r"+strconv.Itoa(i), at))
	}
	clock.set(start.Add(11 * time.Minute))
	for _, r := range n.Ingester.Ingest(t.Context(), subs) {
		if r.Status != telemetry.StatusAccepted {
			t.Fatalf("%s: %s", r.Status, r.Message)
		}
	}
	if _, err := n.Telemetry.Index(t.Context()); err != nil {
		t.Fatal(err)
	}
	info, err := n.Client.Node(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n, owner, car, info.LogKey
}

// TestTheExportRouteRefusesBadRequestsWithStableCodes asks GET /v1/vehicles/{id}/export what it must
// refuse.
func TestTheExportRouteRefusesBadRequestsWithStableCodes(t *testing.T) {
	n, owner, car, _ := exportNode(t)
	token, stranger := n.SignIn(t, owner), n.SignIn(t, testnode.NewKey(t))
	base := fmt.Sprintf("%s/v1/vehicles/%d/export", n.URL, car)
	for _, tc := range []struct {
		name, url, token string
		status           int
		code             string
	}{
		{"no token", base, "", http.StatusUnauthorized, "unauthenticated"},
		{"a caller who never owned the car", base, stranger, http.StatusForbidden, "forbidden"},
		{"a vehicle that does not exist", fmt.Sprintf("%s/v1/vehicles/%d/export", n.URL, car+100), token, http.StatusNotFound, "unknown_vehicle"},
		{"a vehicle id that is not a number", n.URL + "/v1/vehicles/car/export", token, http.StatusBadRequest, "malformed"},
		{"from not RFC 3339", base + "?from=2026-13-01", token, http.StatusBadRequest, "bad_date"},
		{"to not RFC 3339", base + "?to=yesterday", token, http.StatusBadRequest, "bad_date"},
		{"from after to", base + "?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", token, http.StatusBadRequest, "inverted_range"},
		{"a snapshot that is not one", base + "?snapshot=12.x!", token, http.StatusBadRequest, "bad_snapshot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := getExport(t, tc.url, tc.token, nil)
			if a.status != tc.status || errorCode(a.body) != tc.code {
				t.Fatalf("HTTP %d %s, want %d %s", a.status, a.body, tc.status, tc.code)
			}
		})
	}
	req, _ := http.NewRequest(http.MethodPost, base, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || errorCode(b) != "method_not_allowed" {
		t.Fatalf("POST: HTTP %d %s", resp.StatusCode, b)
	}
}

// TestAnExportResumesByRangeToTheSameBytes downloads an export, then asks for its rest by Range with the
// snapshot and If-Range: the pieces are the whole, byte for byte, and verify.
func TestAnExportResumesByRangeToTheSameBytes(t *testing.T) {
	n, owner, car, logKey := exportNode(t)
	token := n.SignIn(t, owner)
	base := fmt.Sprintf("%s/v1/vehicles/%d/export", n.URL, car)
	full := getExport(t, base, token, nil)
	if full.status != http.StatusOK || full.header.Get("Content-Type") != "application/zip" {
		t.Fatalf("HTTP %d %s", full.status, full.body)
	}
	rep, err := export.Verify(mustZip(t, full.body), logKey)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 600 {
		t.Fatalf("%d records in the export, want 600", rep.Records)
	}
	etag, snap := full.header.Get("ETag"), full.header.Get("X-Glovebox-Snapshot")
	if len(etag) < 3 || etag[0] != '"' || snap == "" {
		t.Fatalf("ETag %q, snapshot %q", etag, snap)
	}
	resume := base + "?snapshot=" + snap
	half := int64(len(full.body) / 2)
	total := strconv.Itoa(len(full.body))
	for _, tc := range []struct {
		name    string
		url     string
		headers map[string]string
		status  int
		body    []byte
		rng     string
	}{
		{"the rest after half", resume, map[string]string{"Range": fmt.Sprintf("bytes=%d-", half), "If-Range": etag},
			http.StatusPartialContent, full.body[half:], fmt.Sprintf("bytes %d-%d/%s", half, len(full.body)-1, total)},
		{"ten bytes in the middle", resume, map[string]string{"Range": "bytes=100-109"},
			http.StatusPartialContent, full.body[100:110], "bytes 100-109/" + total},
		{"the whole again", resume, nil, http.StatusOK, full.body, ""},
		{"a range of another snapshot's ETag: the whole", resume, map[string]string{"Range": "bytes=100-", "If-Range": `"other"`},
			http.StatusOK, full.body, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := getExport(t, tc.url, token, tc.headers)
			if a.status != tc.status {
				t.Fatalf("HTTP %d %s", a.status, a.body)
			}
			if !bytes.Equal(a.body, tc.body) {
				t.Fatalf("%d bytes, not the %d of the export", len(a.body), len(tc.body))
			}
			if got := a.header.Get("Content-Range"); got != tc.rng {
				t.Fatalf("Content-Range %q, want %q", got, tc.rng)
			}
			if a.header.Get("ETag") != etag {
				t.Fatalf("ETag %q, want %q", a.header.Get("ETag"), etag)
			}
		})
	}
	a := getExport(t, resume, token, map[string]string{"Range": "bytes=" + total + "-"})
	if a.status != http.StatusRequestedRangeNotSatisfiable || a.header.Get("Content-Range") != "bytes */"+total {
		t.Fatalf("a range past the end: HTTP %d %s %q", a.status, a.body, a.header.Get("Content-Range"))
	}

	// A range of an archive this server never built whole: it builds it to learn its length.
	part := base + "?from=" + time.Now().Add(-time.Hour).Add(5*time.Minute).UTC().Format(time.RFC3339)
	first := getExport(t, part, token, map[string]string{"Range": "bytes=0-"})
	if first.status != http.StatusPartialContent {
		t.Fatalf("HTTP %d %s", first.status, first.body)
	}
	whole := getExport(t, part+"&snapshot="+first.header.Get("X-Glovebox-Snapshot"), token, nil)
	if !bytes.Equal(whole.body, first.body) || first.header.Get("Content-Range") != fmt.Sprintf("bytes 0-%d/%d", len(whole.body)-1, len(whole.body)) {
		t.Fatalf("a range 0- of %d bytes (%s), the whole is %d", len(first.body), first.header.Get("Content-Range"), len(whole.body))
	}
}

func mustZip(t *testing.T, b []byte) *zip.Reader {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return zr
}
