// Package web holds the node's browser code: the wallet module (src/wallet.js: keystore decryption,
// EIP-1193 wallets, EIP-712 signing, submission, error codes in words), the consent screen's script
// (src/consent.js), the owner's and developer's web app (src/app/, served at / by Handler) and the GraphQL
// playground (src/playground/, GraphiQL, served at /graphql/playground by Handler), bundled with
// ethers.js, Leaflet, uPlot, GraphiQL and React by esbuild into dist/ (go generate ./web, after npm ci in this
// directory). The bundle is committed, so go build needs no npm; CI rebuilds it and fails if it differs.
//
// It owns the browser code and its embedding only, and imports nothing of the project: the pages speak
// the node's HTTP API like any other client.
package web

import (
	_ "embed"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

//go:generate go run ./internal/build

// ConsentJS is the consent screen's script, ethers.js included (no external assets at run time).
//
//go:embed dist/consent.js
var ConsentJS []byte

// AppJS and AppCSS are the web app's script and style sheet, every dependency included.
var (
	//go:embed dist/app.js
	AppJS []byte
	//go:embed dist/app.css
	AppCSS []byte
)

//go:embed app/index.html
var indexHTML string

// The GraphQL playground: its page, and GraphiQL with React, its fonts included.
var (
	//go:embed app/playground.html
	playgroundHTML []byte
	//go:embed dist/playground.js
	PlaygroundJS []byte
	//go:embed dist/playground.css
	PlaygroundCSS []byte
)

// playgroundCSP lets the playground run only its own script and style sheet (GraphiQL's fonts are data:
// URLs in it) and talk only to this node; it cannot be framed.
const playgroundCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var indexTmpl = template.Must(template.New("index").Parse(indexHTML))

// Options configures the web app. The zero value serves it with nothing loaded from other hosts.
type Options struct {
	// MapTiles is a tile URL template (Leaflet's, e.g. "https://tiles.example/{z}/{x}/{y}.png") the map
	// loads its background from. Empty: no tiles; tracks are drawn on a plain background, and the pages
	// load nothing from any other host.
	MapTiles string
	// MapAttribution is shown on the map when MapTiles is set (most tile servers require one).
	MapAttribution string
}

// CheckMapTiles reports whether s is a usable tile URL template: an absolute http(s) URL with {z}, {x}
// and {y} (and optionally {s} in the host, and {r}), without spaces, quotes, semicolons or commas (its
// origin goes into the page's Content-Security-Policy).
func CheckMapTiles(s string) error {
	if strings.ContainsAny(s, " \t\r\n'\";,<>\\") {
		return errBadTiles
	}
	for _, p := range []string{"{z}", "{x}", "{y}"} {
		if !strings.Contains(s, p) {
			return errBadTiles
		}
	}
	u, err := url.Parse(tilesReplacer.Replace(s))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" || u.User != nil {
		return errBadTiles
	}
	return nil
}

var tilesReplacer = strings.NewReplacer("{s}", "a", "{z}", "0", "{x}", "0", "{y}", "0", "{r}", "")

var errBadTiles = errors.New("a map tile URL template is an absolute http(s) URL with {z}, {x} and {y}")

// Paths are the routes Handler serves, in http.ServeMux pattern syntax.
func Paths() []string {
	return []string{"GET /{$}", "GET /app/app.js", "GET /app/app.css", "GET /graphql/playground", "GET /app/playground.js", "GET /app/playground.css"}
}

// Handler serves the web app: the page at /, its script and style sheet under /app/, and the GraphQL
// playground at /graphql/playground. Navigation inside
// the app is in the URL fragment (/#/vehicles/3), so the server knows one page.
func Handler(o Options) (http.Handler, error) {
	tileOrigin := ""
	if o.MapTiles != "" {
		if err := CheckMapTiles(o.MapTiles); err != nil {
			return nil, err
		}
		// The origin of a template such as https://{s}.tile.example/… is a wildcard host.
		u, _ := url.Parse(tilesReplacer.Replace(o.MapTiles))
		host := u.Host
		if strings.Contains(o.MapTiles, "{s}.") {
			host = "*." + strings.SplitN(u.Host, ".", 2)[1]
		}
		tileOrigin = " " + u.Scheme + "://" + host
	}
	// html/template writes a value in a JSON script element as JSON, escaped for HTML.
	cfg := struct {
		MapTiles       string `json:"mapTiles"`
		MapAttribution string `json:"mapAttribution"`
	}{o.MapTiles, o.MapAttribution}
	var page strings.Builder
	if err := indexTmpl.Execute(&page, struct{ Config any }{cfg}); err != nil {
		return nil, err
	}
	// The app runs only its own script, talks only to this node and loads images only from here (and
	// the tile server, if one is configured); it cannot be framed.
	csp := "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:" + tileOrigin +
		"; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	static := func(body []byte, ctype string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ctype)
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.Header().Set("Cache-Control", "no-cache")
			w.Write(body)
		}
	}
	mux := http.NewServeMux()
	body := []byte(page.String())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		w.Write(body)
	})
	mux.HandleFunc("GET /app/app.js", static(AppJS, "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /app/app.css", static(AppCSS, "text/css; charset=utf-8"))
	mux.HandleFunc("GET /graphql/playground", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", playgroundCSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		w.Write(playgroundHTML)
	})
	mux.HandleFunc("GET /app/playground.js", static(PlaygroundJS, "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /app/playground.css", static(PlaygroundCSS, "text/css; charset=utf-8"))
	return mux, nil
}
