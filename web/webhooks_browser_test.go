package web_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ethereum/go-ethereum/crypto"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/webhook"
)

// hookReceiver is a local webhook endpoint: it answers the verification challenge, fails the first
// attempt of every test event with 503 and accepts everything else, keeping what it got.
type hookReceiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []hookRequest
}

type hookRequest struct {
	header http.Header
	body   []byte
	event  webhook.CloudEvent
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var ev webhook.CloudEvent
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("a delivery is not a CloudEvent: %v: %s", err, body)
		}
		r.mu.Lock()
		r.got = append(r.got, hookRequest{req.Header.Clone(), body, ev})
		first := len(r.of(webhook.TypeTest)) == 1
		r.mu.Unlock()
		switch {
		case ev.Type == webhook.VerifyType:
			var data struct{ Challenge string }
			json.Unmarshal(ev.Data, &data)
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]string{"challenge": data.Challenge})
		case ev.Type == webhook.TypeTest && first:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// of returns the requests of type typ; the caller holds mu.
func (r *hookReceiver) of(typ string) []hookRequest {
	var out []hookRequest
	for _, g := range r.got {
		if g.event.Type == typ {
			out = append(out, g)
		}
	}
	return out
}

func (r *hookReceiver) requests(typ string) []hookRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.of(typ)
}

// TestWebhookConsole: the insurer's developer opens the webhooks of their app in the developer console,
// is told a broken CEL condition's error code, registers a signal webhook for every granted car against
// a local receiver and sees its secret once; the endpoint is verified and shown active; a test event
// fails once with 503 and is delivered on the retry, as the delivery log shows (2 attempts, 200); a
// manual retry delivers it again with the same id; an edit changes the condition, a pause disables the
// webhook, and delete removes it.
func TestWebhookConsole(t *testing.T) {
	ctx := browser(t)
	w := newWorldNode(t, testnode.Options{Webhooks: webhook.Options{
		Policy:    webhook.Policy{AllowHTTP: true, AllowPrivate: true},
		RetryBase: 300 * time.Millisecond, Heartbeat: -1, Tick: 200 * time.Millisecond,
	}})
	recv := newHookReceiver(t)
	dev := fixedKey(t, "insurer developer")
	wallet, err := os.ReadFile(filepath.Join("testdata", "testwallet.js"))
	if err != nil {
		t.Fatal(err)
	}
	app := w.app.Address.Hex()
	p := "wh-new-" + app
	install := string(wallet) + ";GloveboxTestWallet.install('0x" + hex.EncodeToString(crypto.FromECDSA(dev.Key)) + "');"
	run(t, ctx, "sign in and open the app's webhooks",
		addScript(install),
		chromedp.Navigate(w.n.URL+"/#/developer"),
		chromedp.WaitVisible(chromedp.ID("use-wallet")),
		chromedp.Click(chromedp.ID("use-wallet")),
		chromedp.WaitVisible(chromedp.ID("app-stats-"+app)),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("webhooks-panel-`+app+`").open = true`),
		chromedp.WaitVisible(chromedp.ID("webhooks-refresh-"+app)),
	)
	if text := eval[string](t, ctx, `document.getElementById("webhooks-`+app+`").textContent`); !strings.Contains(text, "No webhooks yet.") {
		t.Errorf("an app without webhooks shows %q", text)
	}

	run(t, ctx, "a broken condition is refused with its code",
		chromedp.SendKeys(chromedp.ID(p+"-url"), recv.srv.URL+"/hooks"),
		chromedp.SendKeys(chromedp.ID(p+"-description"), "fast driving"),
		chromedp.SendKeys(chromedp.ID(p+"-signal"), "speed"),
		chromedp.SendKeys(chromedp.ID(p+"-condition"), "value >"),
		chromedp.Click(chromedp.ID(p+"-submit")),
		chromedp.WaitVisible(`#`+p+`-result [role=alert]`),
	)
	if text := eval[string](t, ctx, `document.querySelector("#`+p+`-result [role=alert]").textContent`); !strings.Contains(text, "(webhook_invalid_condition, field trigger.condition)") {
		t.Errorf("the refusal says %q", text)
	}
	if hooks, _ := w.n.Webhooks.List(context.Background(), dev.Address, w.app.Address); len(hooks) != 0 {
		t.Fatalf("a refused webhook was stored: %+v", hooks)
	}

	run(t, ctx, "register a webhook",
		chromedp.SetValue(chromedp.ID(p+"-condition"), "value > 250.0 && previousValue <= 250.0"),
		chromedp.Click(chromedp.ID(p+"-submit")),
		chromedp.WaitVisible(chromedp.ID(p+"-secret")),
	)
	id := eval[string](t, ctx, `document.getElementById("`+p+`-id").textContent`)
	secret := eval[string](t, ctx, `document.getElementById("`+p+`-secret").textContent`)
	if !strings.HasPrefix(secret, "whsec_") || !strings.HasPrefix(id, "wh_") {
		t.Fatalf("the new webhook %q shows the secret %q", id, secret)
	}
	if n := eval[int](t, ctx, `[...document.querySelectorAll("#`+p+`-result button")].filter((b) => b.textContent === "Copy the secret").length`); n != 1 {
		t.Errorf("%d copy buttons for the secret", n)
	}
	stored, err := w.n.Webhooks.Get(context.Background(), dev.Address, w.app.Address, id)
	if err != nil || !stored.AllGranted || stored.Trigger != (webhook.Trigger{Kind: "signal", Signal: "speed", Condition: "value > 250.0 && previousValue <= 250.0"}) ||
		stored.URL != recv.srv.URL+"/hooks" || stored.Description != "fast driving" || stored.Secret != secret {
		t.Fatalf("the stored webhook: %+v %v", stored, err)
	}
	run(t, ctx, "the endpoint is verified",
		chromedp.Poll[chromedp.Void](`(document.getElementById("wh-status-`+id+`") || {}).textContent === "active"`, chromedp.WithPollingTimeout(60*time.Second)))
	if text := eval[string](t, ctx, `document.querySelector("#webhook-table-`+app+` tr[data-webhook='`+id+`']").textContent`); !strings.Contains(text, "speed when value > 250.0 && previousValue <= 250.0") ||
		!strings.Contains(text, "every car granted") || !strings.Contains(text, recv.srv.URL+"/hooks") {
		t.Errorf("the webhook's row says %q", text)
	}

	run(t, ctx, "send a test event",
		chromedp.Click(chromedp.ID("wh-test-"+id)),
		statusSays("Queued test event"),
	)
	deadline := time.Now().Add(60 * time.Second)
	for len(recv.requests(webhook.TypeTest)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the test event arrived %d times, want 2", len(recv.requests(webhook.TypeTest)))
		}
		time.Sleep(50 * time.Millisecond)
	}
	logRow := `document.querySelector("#wh-deliveries-` + id + ` tr[data-delivery]")`
	run(t, ctx, "the delivery log",
		chromedp.Evaluate[chromedp.Void](`document.getElementById("wh-log-`+id+`").open = true`),
		chromedp.Poll[chromedp.Void](`(() => { const r = `+logRow+`; if (r && r.dataset.status === "delivered") return true;
			const b = document.getElementById("wh-log-refresh-`+id+`"); if (b) b.click(); return false; })()`, chromedp.WithPollingTimeout(60*time.Second), chromedp.WithPollingInterval(time.Second)),
	)
	// The panel fits a phone's width (the screenshots are written with -screenshots).
	run(t, ctx, "webhook screenshots", flat(
		[]chromedp.Action[chromedp.Void]{chromedp.Evaluate[chromedp.Void](`document.getElementById("webhooks-panel-` + app + `").scrollIntoView()`)},
		both("webapp-webhooks"))...)
	cells := eval[[]string](t, ctx, `[...`+logRow+`.cells].map((c) => c.textContent)`)
	tests := recv.requests(webhook.TypeTest)
	delivery := tests[0].header.Get("webhook-id")
	if want := []string{"glovebox.webhook.test" + delivery, "delivered", "2", "200"}; len(cells) < 4 || cells[0] != want[0] || cells[1] != want[1] || cells[2] != want[2] || cells[3] != want[3] {
		t.Errorf("the delivery log's row is %q, want it to start with %q", cells, want)
	}

	run(t, ctx, "retry the delivery",
		chromedp.Click(chromedp.ID("wh-retry-"+delivery)),
		statusSays("pending again"),
	)
	deadline = time.Now().Add(60 * time.Second)
	for len(recv.requests(webhook.TypeTest)) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the retried test event did not arrive")
		}
		time.Sleep(50 * time.Millisecond)
	}
	run(t, ctx, "the retry in the log",
		chromedp.Poll[chromedp.Void](`(() => { const r = `+logRow+`; if (r && r.dataset.status === "delivered" && r.cells[2].textContent === "3") return true;
			const b = document.getElementById("wh-log-refresh-`+id+`"); if (b) b.click(); return false; })()`, chromedp.WithPollingTimeout(60*time.Second), chromedp.WithPollingInterval(time.Second)),
	)
	stock, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range recv.requests(webhook.TypeTest) {
		if got := g.header.Get("webhook-id"); got != delivery {
			t.Errorf("attempt %d has webhook-id %s, want %s", i+1, got, delivery)
		}
		if err := stock.Verify(g.body, g.header); err != nil {
			t.Errorf("attempt %d: the stock library refuses it: %v", i+1, err)
		}
	}

	edit := "wh-edit-" + id
	run(t, ctx, "edit the condition",
		chromedp.Evaluate[chromedp.Void](`document.getElementById("wh-edit-`+id+`").open = true`),
		chromedp.SetValue(chromedp.ID(edit+"-condition"), "value > 200.0"),
		chromedp.Click(chromedp.ID(edit+"-save")),
		statusSays("Saved the webhook"),
	)
	if got, err := w.n.Webhooks.Get(context.Background(), dev.Address, w.app.Address, id); err != nil || got.Trigger.Condition != "value > 200.0" || got.Status != webhook.StatusActive {
		t.Fatalf("after the edit: %+v %v", got, err)
	}
	run(t, ctx, "pause it",
		chromedp.WaitVisible(chromedp.ID("wh-toggle-"+id)),
		chromedp.Click(chromedp.ID("wh-toggle-"+id)),
		statusSays("Paused"),
		chromedp.Poll[chromedp.Void](`(document.getElementById("wh-status-`+id+`") || {}).textContent === "disabled: disabled by the app"`, chromedp.WithPollingTimeout(30*time.Second)),
	)
	run(t, ctx, "a test event to a paused webhook is refused with its code",
		chromedp.Click(chromedp.ID("wh-test-"+id)),
		chromedp.WaitVisible(`#webhook-errors-`+app+` [role=alert]`),
	)
	if text := eval[string](t, ctx, `document.querySelector("#webhook-errors-`+app+` [role=alert]").textContent`); !strings.Contains(text, "(webhook_not_active)") {
		t.Errorf("the refusal says %q", text)
	}
	checkLabels(t, ctx, "developers with webhooks")
	run(t, ctx, "delete it",
		chromedp.Click(chromedp.ID("wh-delete-"+id)),
		chromedp.Click(chromedp.ID("wh-delete-"+id)),
		statusSays("Deleted the webhook"),
		chromedp.WaitNotPresent(chromedp.ID("wh-status-"+id)),
	)
	if hooks, err := w.n.Webhooks.List(context.Background(), dev.Address, w.app.Address); err != nil || len(hooks) != 0 {
		t.Fatalf("after the delete: %+v %v", hooks, err)
	}
}
