package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/glovebox/glovebox/web"
)

func get(t *testing.T, h http.Handler, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Result()
}

// The page loads only its own script and style sheet, may talk only to its node, cannot be framed, and
// carries the configuration as JSON.
func TestHandlerServesTheAppAndNothingFromElsewhere(t *testing.T) {
	h, err := web.Handler(web.Options{})
	if err != nil {
		t.Fatal(err)
	}
	resp := get(t, h, "/")
	body, _ := io.ReadAll(resp.Body)
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "img-src 'self' data: blob:;"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Error("the page can be framed")
	}
	for _, want := range []string{`<script src="/app/app.js" defer></script>`, `href="/app/app.css"`, `{"mapTiles":"","mapAttribution":""}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if strings.Contains(string(body), "http://") || strings.Contains(string(body), "https://") {
		t.Error("the page refers to another host")
	}
	for path, ctype := range map[string]string{"/app/app.js": "text/javascript; charset=utf-8", "/app/app.css": "text/css; charset=utf-8"} {
		r := get(t, h, path)
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != 200 || r.Header.Get("Content-Type") != ctype || len(b) < 1000 {
			t.Errorf("%s: %d %s, %d bytes", path, r.StatusCode, r.Header.Get("Content-Type"), len(b))
		}
	}
}

// A tile server is the one other origin the page may load from, for images only.
func TestMapTilesAllowTheirOriginForImages(t *testing.T) {
	for _, c := range []struct{ tiles, origin string }{
		{"https://tiles.example/{z}/{x}/{y}.png", "https://tiles.example"},
		{"https://{s}.tile.example.org/{z}/{x}/{y}.png", "https://*.tile.example.org"},
		{"http://127.0.0.1:9000/tiles/{z}/{x}/{y}.png", "http://127.0.0.1:9000"},
	} {
		h, err := web.Handler(web.Options{MapTiles: c.tiles, MapAttribution: "© map makers"})
		if err != nil {
			t.Fatalf("%s: %v", c.tiles, err)
		}
		resp := get(t, h, "/")
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "img-src 'self' data: blob: "+c.origin+";") || !strings.Contains(csp, "connect-src 'self';") {
			t.Errorf("%s: CSP %q", c.tiles, csp)
		}
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), `"mapAttribution":"\u00a9 map makers"`) && !strings.Contains(string(body), `"mapAttribution":"© map makers"`) {
			t.Errorf("%s: the page's config: %s", c.tiles, body)
		}
	}
}

func TestBadMapTilesAreRefused(t *testing.T) {
	for _, s := range []string{"tiles.example/{z}/{x}/{y}.png", "https://tiles.example/tile.png", "ftp://tiles.example/{z}/{x}/{y}", "https:///{z}/{x}/{y}",
		"https://tiles.example/{z}/{x}/{y}.png' ; script-src *"} {
		if _, err := web.Handler(web.Options{MapTiles: s}); err == nil {
			t.Errorf("%q was accepted", s)
		}
	}
}
