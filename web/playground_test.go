package web_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/glovebox/glovebox/web"
)

// The playground is served with its own script and style sheet, talks only to its node and cannot be
// framed.
func TestPlaygroundIsSelfContainedAndNotFramable(t *testing.T) {
	h, err := web.Handler(web.Options{})
	if err != nil {
		t.Fatal(err)
	}
	resp := get(t, h, "/graphql/playground")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /graphql/playground: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	if got := resp.Header.Get("Content-Security-Policy"); got != csp {
		t.Errorf("CSP %q, want %q", got, csp)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Error("the playground can be framed")
	}
	for _, want := range []string{`<script src="/app/playground.js" defer></script>`, `href="/app/playground.css"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if strings.Contains(string(body), "http://") || strings.Contains(string(body), "https://") {
		t.Error("the page refers to another host")
	}
	for path, ctype := range map[string]string{"/app/playground.js": "text/javascript; charset=utf-8", "/app/playground.css": "text/css; charset=utf-8"} {
		r := get(t, h, path)
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != 200 || r.Header.Get("Content-Type") != ctype || len(b) < 100000 {
			t.Errorf("%s: %d %s, %d bytes", path, r.StatusCode, r.Header.Get("Content-Type"), len(b))
		}
	}
}

// The example queries the playground opens with are valid against the node's schema.
func TestPlaygroundExamplesAreValidQueries(t *testing.T) {
	var sources []*ast.Source
	files, _ := filepath.Glob("../api/graphql/schema/*.graphqls")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, &ast.Source{Name: f, Input: string(b)})
	}
	schema, err := gqlparser.LoadSchema(sources...)
	if err != nil {
		t.Fatal(err)
	}
	queries, _ := filepath.Glob("src/playground/queries/*.graphql")
	if len(queries) != 5 {
		t.Fatalf("%d example queries, want 5", len(queries))
	}
	for _, q := range queries {
		b, err := os.ReadFile(q)
		if err != nil {
			t.Fatal(err)
		}
		if _, errs := gqlparser.LoadQuery(schema, string(b)); len(errs) > 0 {
			t.Errorf("%s: %v", q, errs)
		}
	}
}

// watchCSP records every Content-Security-Policy violation of the page in window.cspViolations.
const watchCSP = `window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => window.cspViolations.push(e.violatedDirective + " " + e.blockedURI));`

// TestPlaygroundJourney: signed in to the web app, the playground runs queries as that account; its
// schema docs and autocomplete come from the node's schema; the example query answers; signed out, a
// key file signs in right there. Nothing is loaded from elsewhere and nothing breaks the page's CSP.
func TestPlaygroundJourney(t *testing.T) {
	ctx := browser(t)
	w := newWorld(t)
	if w.car != 1 {
		t.Fatalf("the examples read car 1; the world's car is %d", w.car)
	}
	kf := keyFile(t, w.owner, "glovebox demo")
	owner := w.owner.Address.Hex()
	run(t, ctx, "sign in to the web app, then open the playground in the same tab",
		addScript(watchCSP),
		chromedp.Navigate(w.n.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("keyfile")),
		chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{kf}),
		chromedp.SendKeys(chromedp.ID("password"), "glovebox demo"),
		chromedp.Click(chromedp.ID("unlock")),
		chromedp.WaitVisible(chromedp.CSS("#car-1")),
		chromedp.Navigate(w.n.URL+"/graphql/playground"),
		chromedp.WaitVisible(chromedp.CSS(".graphiql-container .graphiql-query-editor .CodeMirror")),
		chromedp.Poll[chromedp.Void](`((document.getElementById("who")||{}).textContent||"").includes(`+quote(owner)+`)`, chromedp.WithPollingTimeout(30*time.Second)),
	)
	if q := eval[string](t, ctx, `document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror.getValue()`); !strings.Contains(q, "signalsLatest(tokenId: 1)") {
		t.Errorf("the first tab holds %q, want the signalsLatest example", q)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll(".graphiql-tab").length`); n != 5 {
		t.Errorf("%d tabs, want the 5 examples", n)
	}

	run(t, ctx, "run the example as the owner",
		chromedp.Click(chromedp.CSS(".graphiql-execute-button")),
		chromedp.Poll[chromedp.Void](`(document.querySelector(".graphiql-response .CodeMirror")||{CodeMirror:{getValue:()=>""}}).CodeMirror.getValue().includes('"lastSeen"')`, chromedp.WithPollingTimeout(30*time.Second)),
	)
	answer := eval[string](t, ctx, `document.querySelector(".graphiql-response .CodeMirror").CodeMirror.getValue()`)
	if !strings.Contains(answer, `"speed": {`) || strings.Contains(answer, `"errors"`) {
		t.Errorf("the owner's answer: %s", answer)
	}

	run(t, ctx, "schema docs and autocomplete",
		chromedp.Click(chromedp.CSS(`button[aria-label="Show Documentation Explorer"]`)),
		chromedp.Poll[chromedp.Void](`(document.querySelector(".graphiql-doc-explorer")||{}).textContent.includes("Query")`, chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.Evaluate[chromedp.Void](`{
			const cm = document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror;
			cm.setValue("{ signalsLat");
			cm.focus();
			cm.setCursor(cm.lineCount(), 0);
			cm.execCommand("autocomplete");
		}`),
		chromedp.Poll[chromedp.Void](`(document.querySelector(".CodeMirror-hints")||{}).textContent.includes("signalsLatest")`, chromedp.WithPollingTimeout(30*time.Second)),
	)

	run(t, ctx, "sign out, and sign in with a key file in the playground",
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("keyfile")),
		chromedp.SetUploadFiles(chromedp.ID("keyfile"), []string{kf}),
		chromedp.SendKeys(chromedp.ID("passphrase"), "glovebox demo"),
		chromedp.Click(chromedp.ID("unlock")),
		chromedp.Poll[chromedp.Void](`((document.getElementById("who")||{}).textContent||"").includes(`+quote(owner)+`)`, chromedp.WithPollingTimeout(30*time.Second)),
	)
	if v := eval[[]string](t, ctx, `window.cspViolations`); len(v) != 0 {
		t.Errorf("the page broke its CSP: %q", v)
	}
	if v := eval[[]string](t, ctx, `performance.getEntriesByType("resource").map((e) => e.name).filter((u) => !u.startsWith(location.origin + "/") && !u.startsWith("data:"))`); len(v) != 0 {
		t.Errorf("the page loaded from elsewhere: %q", v)
	}
}

func quote(s string) string { return `"` + s + `"` }
