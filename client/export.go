package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/glovebox/glovebox/api/wire"
)

// ExportQuery asks for a vehicle's data export (GET /v1/vehicles/{id}/export, docs/export.md).
type ExportQuery struct {
	Vehicle  uint64
	From, To time.Time // zero: open
	// To resume: the snapshot token and ETag of the first answer, and how many bytes are already there.
	Snapshot, ETag string
	Offset         int64
}

// ExportStream is an export being downloaded: Body holds the archive's bytes from Offset on.
type ExportStream struct {
	Body     io.ReadCloser
	Offset   int64  // where Body starts in the archive: the query's Offset if the node resumed, else 0
	Total    int64  // the archive's length, or -1 when the node did not say
	ETag     string // the archive's strong ETag
	Snapshot string // the token that asks for the same archive again
}

// Export opens a vehicle's data export as the signed-in owner (token). With q.Offset > 0 it asks for the
// rest of the archive q.Snapshot and q.ETag name; a node that cannot resume it sends the whole archive
// (Offset 0). The caller closes Body. Errors are *APIError.
func (c *Client) Export(ctx context.Context, token string, q ExportQuery) (*ExportStream, error) {
	v := url.Values{}
	if !q.From.IsZero() {
		v.Set("from", q.From.UTC().Format(time.RFC3339Nano))
	}
	if !q.To.IsZero() {
		v.Set("to", q.To.UTC().Format(time.RFC3339Nano))
	}
	if q.Snapshot != "" {
		v.Set("snapshot", q.Snapshot)
	}
	u := c.base + "/v1/vehicles/" + strconv.FormatUint(q.Vehicle, 10) + "/export"
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if q.Offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(q.Offset, 10)+"-")
		req.Header.Set("If-Range", q.ETag)
	}
	hc := *c.http
	hc.Timeout = 0 // an export of a year takes minutes; ctx bounds it
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	s := &ExportStream{Body: resp.Body, Total: -1, ETag: resp.Header.Get("ETag"), Snapshot: resp.Header.Get("X-Glovebox-Snapshot")}
	switch resp.StatusCode {
	case http.StatusOK:
		s.Total = resp.ContentLength
	case http.StatusPartialContent:
		var first, last, total int64
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-%d/%d", &first, &last, &total); err != nil || first != q.Offset {
			resp.Body.Close()
			return nil, fmt.Errorf("the node answered the range %d- with Content-Range %q", q.Offset, resp.Header.Get("Content-Range"))
		}
		s.Offset, s.Total = first, total
	default:
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var eb wire.ErrorBody
		if json.Unmarshal(body, &eb) == nil && eb.Error.Code != "" {
			return nil, &APIError{resp.StatusCode, eb.Error.Code, eb.Error.Message}
		}
		return nil, &APIError{resp.StatusCode, "http_" + strconv.Itoa(resp.StatusCode), strings.TrimSpace(string(body))}
	}
	return s, nil
}
