package connect

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/glovebox/glovebox/ledger"
)

//go:embed templates/*.html templates/*.css
var templateFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"css": func() template.CSS {
		b, err := templateFS.ReadFile("templates/page.css")
		if err != nil {
			panic(err) // embedded at build time
		}
		return template.CSS(b)
	},
}).ParseFS(templateFS, "templates/*.html"))

// pageData is what the consent screen shows; Script is what its JavaScript reads.
type pageData struct {
	Nonce      string
	Request    string
	AppName    string
	AppAddress string
	Scopes     []Scope
	Acts       bool // a scope acts on the car, not only reads
	Purpose    string
	NoPurpose  bool
	TermsURI   string
	Duration   string
	Until      string
	Script     scriptData
	DenyAction string
}

// scriptData is handed to the consent screen's JavaScript as JSON.
type scriptData struct {
	Request     string   `json:"request"`
	App         string   `json:"app"`
	AppName     string   `json:"appName"`
	Permissions []string `json:"permissions"`
	Purpose     string   `json:"purpose"`
	TermsURI    string   `json:"termsUri"`
	ExpiresAt   string   `json:"expiresAt"` // unix seconds, decimal
	Decision    string   `json:"decision"`  // the decision endpoint's path
}

// securityHeaders sets what every page of the flow carries: it cannot be framed (CSP frame-ancestors
// 'none' and X-Frame-Options), runs only its own script (by nonce), talks only to this node, and leaks
// no referrer. formAction is the origin a form may end up at after its redirect (the app's, for Deny).
func securityHeaders(w http.ResponseWriter, nonce, formAction string) {
	h := w.Header()
	csp := "default-src 'none'; script-src 'nonce-" + nonce + "'; style-src 'nonce-" + nonce + "'; img-src 'self' data:; " +
		"connect-src 'self'; form-action 'self'"
	if formAction != "" {
		csp += " " + formAction
	}
	csp += "; frame-ancestors 'none'; base-uri 'none'"
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/html; charset=utf-8")
}

func newNonce() string {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b[:]) // CSP nonces may be base64url; html/template leaves these characters as they are
}

// origin returns scheme://host of an absolute URL, "" if it has none.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || !plainHost(u.Host) {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// plainHost reports whether host (with an optional port) is made only of what a DNS name, an IPv4 or a
// bracketed IPv6 address holds: letters, digits, '-', '.', ':', '[' and ']'. Go's URL parser lets through
// ';', '*', ',' and quotes, which would change the meaning of the Content-Security-Policy an origin is
// copied into.
func plainHost(host string) bool {
	for _, c := range host {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

// humanDuration says d in days (or hours, under two days) for the driver.
func humanDuration(d time.Duration) string {
	if d < 48*time.Hour {
		h := int(d.Round(time.Hour) / time.Hour)
		if h == 1 {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", h)
	}
	return fmt.Sprintf("%d days", int(d.Round(24*time.Hour)/(24*time.Hour)))
}

func (p *Provider) consentPage(w http.ResponseWriter, id string, pd *pending) {
	req := pd.req
	nonce := newNonce()
	// The log refuses invisible characters in new names (ledger.Admit); one admitted before that is shown
	// with each replaced, so that it cannot reorder what the driver reads.
	appName := ledger.Visible(req.AppName)
	until := time.Unix(pd.expiresAt, 0).UTC()
	d := pageData{
		Nonce: nonce, Request: id, AppName: appName, AppAddress: req.App.Hex(), Scopes: req.Scope.Vehicle,
		Acts:    slices.ContainsFunc(req.Scope.Vehicle, func(s Scope) bool { return s.Permission == ledger.PermCommands }),
		Purpose: req.Purpose, NoPurpose: req.Purpose == NoPurpose, TermsURI: req.TermsURI,
		Duration: humanDuration(req.Duration), Until: until.Format("2 January 2006"),
		DenyAction: PathDeny,
		Script: scriptData{Request: id, App: req.App.Hex(), AppName: appName, Permissions: req.Scope.Permissions(),
			Purpose: req.Purpose, TermsURI: req.TermsURI, ExpiresAt: fmt.Sprint(pd.expiresAt), Decision: PathDecision},
	}
	p.render(w, http.StatusOK, "consent.html", d, nonce, origin(req.RedirectURI))
}

// errorData is what the error page shows.
type errorData struct {
	Nonce       string
	Code        string
	Description string
}

// errorPage shows an error the driver cannot be sent back to the app with.
func (p *Provider) errorPage(w http.ResponseWriter, status int, e *AuthorizeError) {
	nonce := newNonce()
	p.render(w, status, "error.html", errorData{Nonce: nonce, Code: e.Code, Description: e.Description}, nonce, "")
}

func (p *Provider) render(w http.ResponseWriter, status int, name string, data any, nonce, formAction string) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		p.logger.Error("connect: couldn't render a page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	securityHeaders(w, nonce, strings.TrimSpace(formAction))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
