package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/glovebox/glovebox/auth"
	"github.com/glovebox/glovebox/export"
	"github.com/glovebox/glovebox/ledger"
)

// Error codes of GET /v1/vehicles/{id}/export.
const (
	CodeBadDate       = "bad_date"
	CodeInvertedRange = "inverted_range"
	CodeBadSnapshot   = "bad_snapshot"
)

// exportCodes documents the codes above (ErrorCodes, docs/errors.md).
var exportCodes = []ErrorCode{
	{CodeBadDate, http.StatusBadRequest, "from or to is not an RFC 3339 time (e.g. 2026-01-31T00:00:00Z)"},
	{CodeInvertedRange, http.StatusBadRequest, "from is not before to"},
	{CodeBadSnapshot, http.StatusBadRequest, "snapshot is not a token an export of this node named (the X-Glovebox-Snapshot header), or it names a time to come"},
}

// HeaderSnapshot names the snapshot an export was built from; ?snapshot= with it builds the same bytes.
const HeaderSnapshot = "X-Glovebox-Snapshot"

// exportLengths remembers the length of the archives this process built, by ETag, so that a resumed
// download can be answered with its Content-Range without building the archive twice.
type exportLengths struct {
	mu sync.Mutex // guards m
	m  map[string]int64
}

const maxExportLengths = 1024

func (l *exportLengths) get(etag string) (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, ok := l.m[etag]
	return n, ok
}

func (l *exportLengths) put(etag string, n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil || len(l.m) >= maxExportLengths {
		l.m = map[string]int64{} // forgetting costs a resumed download one extra build, nothing else
	}
	l.m[etag] = n
}

// exportVehicle answers GET /v1/vehicles/{id}/export?from=&to=&snapshot= with the vehicle's data export
// (package export) for an owner of the vehicle: a zip archive built while it streams. It answers byte
// ranges (Range, If-Range against the strong ETag) by building the same archive again and sending the
// range asked.
func (s *Server) exportVehicle(w http.ResponseWriter, r *http.Request) {
	claims, _ := auth.ClaimsFromContext(r.Context())
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		writeErr(w, string(ledger.CodeMalformed), "a vehicle id is a positive integer")
		return
	}
	q := r.URL.Query()
	req := export.Request{Vehicle: id, Caller: claims.Subject, Snapshot: q.Get("snapshot")}
	for _, b := range []struct {
		name string
		dst  *time.Time
	}{{"from", &req.From}, {"to", &req.To}} {
		if v := q.Get(b.name); v != "" {
			if *b.dst, err = time.Parse(time.RFC3339Nano, v); err != nil {
				writeErr(w, CodeBadDate, fmt.Sprintf("%s %q is not an RFC 3339 time", b.name, v))
				return
			}
		}
	}
	plan, err := s.export.Plan(r.Context(), req)
	switch {
	case errors.Is(err, export.ErrInvertedRange):
		writeErr(w, CodeInvertedRange, err.Error())
		return
	case errors.Is(err, export.ErrUnknownVehicle):
		writeErr(w, string(ledger.CodeUnknownVehicle), fmt.Sprintf("no vehicle %d", id))
		return
	case errors.Is(err, export.ErrNotOwner):
		writeErr(w, CodeForbidden, "only an owner of the vehicle exports its data, and only for the period in which they owned it")
		return
	case errors.Is(err, export.ErrBadSnapshot):
		writeErr(w, CodeBadSnapshot, err.Error())
		return
	case err != nil:
		s.logger.Error("export", "vehicle", id, "err", err)
		writeErr(w, CodeInternal, "couldn't prepare the export")
		return
	}
	etag := plan.ETag()
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Disposition", `attachment; filename="`+plan.Filename()+`"`)
	h.Set("ETag", etag)
	h.Set("Accept-Ranges", "bytes")
	h.Set("Cache-Control", "private, no-store")
	h.Set(HeaderSnapshot, plan.Snapshot())
	h.Set("Access-Control-Expose-Headers", "ETag, Content-Range, Content-Length, "+HeaderSnapshot)

	first, last, ranged := int64(0), int64(-1), false
	if rh := r.Header.Get("Range"); rh != "" {
		if ir := r.Header.Get("If-Range"); ir == "" || ir == etag {
			if first, last, ranged = parseByteRange(rh); !ranged {
				first, last = 0, -1 // a range this handler does not serve (several, suffix): the whole archive
			}
		}
	}
	total, known := s.exportLens.get(etag)
	if ranged && !known {
		var c countWriter
		if err := plan.Write(r.Context(), &c); err != nil {
			s.logger.Error("export", "vehicle", id, "err", err)
			writeErr(w, CodeInternal, "couldn't build the export")
			return
		}
		total, known = c.n, true
		s.exportLens.put(etag, total)
	}
	if ranged {
		if last < 0 || last >= total {
			last = total - 1
		}
		if first >= total || first > last {
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", total))
			h.Del("Content-Disposition")
			writeErr(w, CodeRangeNotSatisfiable, fmt.Sprintf("the archive is %d bytes", total))
			return
		}
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, total))
		h.Set("Content-Length", strconv.FormatInt(last-first+1, 10))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		if known {
			h.Set("Content-Length", strconv.FormatInt(total, 10))
		}
		w.WriteHeader(http.StatusOK)
	}
	out := &rangeWriter{w: w, skip: first, left: -1}
	if ranged {
		out.left = last - first + 1
	}
	err = plan.Write(r.Context(), out)
	if errors.Is(err, errRangeDone) {
		return
	}
	if err != nil && r.Context().Err() != nil {
		return // the client went away
	}
	if err != nil {
		// The status is sent: end the response without its last chunk, so the client sees an incomplete
		// download (and resumes it) rather than a short archive.
		s.logger.Error("export", "vehicle", id, "err", err)
		panic(http.ErrAbortHandler)
	}
	if !ranged {
		s.exportLens.put(etag, out.n)
	}
}

// CodeRangeNotSatisfiable answers a Range beyond the end of an export.
const CodeRangeNotSatisfiable = "range_not_satisfiable"

// parseByteRange parses a single "bytes=FIRST-" or "bytes=FIRST-LAST" range (last -1 when open).
func parseByteRange(h string) (first, last int64, ok bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	a, b, found2 := strings.Cut(spec, "-")
	if !found || !found2 || a == "" || strings.Contains(b, ",") {
		return 0, 0, false
	}
	first, err := strconv.ParseInt(a, 10, 64)
	if err != nil || first < 0 {
		return 0, 0, false
	}
	last = -1
	if b != "" {
		if last, err = strconv.ParseInt(b, 10, 64); err != nil || last < first {
			return 0, 0, false
		}
	}
	return first, last, true
}

// countWriter counts bytes.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

var errRangeDone = errors.New("the range is sent")

// rangeWriter passes on the bytes after the first skip, left of them (all when left < 0), then stops the
// build with errRangeDone. n counts every byte written to it.
type rangeWriter struct {
	w          io.Writer
	skip, left int64
	n          int64
}

func (rw *rangeWriter) Write(p []byte) (int, error) {
	size := len(p)
	rw.n += int64(size)
	if rw.skip >= int64(len(p)) {
		rw.skip -= int64(len(p))
		return size, nil
	}
	p = p[rw.skip:]
	rw.skip = 0
	if rw.left >= 0 && int64(len(p)) >= rw.left {
		if _, err := rw.w.Write(p[:rw.left]); err != nil {
			return 0, err
		}
		rw.left = 0
		return 0, errRangeDone
	}
	if rw.left >= 0 {
		rw.left -= int64(len(p))
	}
	if _, err := rw.w.Write(p); err != nil {
		return 0, err
	}
	return size, nil
}
