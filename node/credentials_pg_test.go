package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/credential"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/node"
	"github.com/glovebox/glovebox/telemetry"
)

// TestCredentialsRoundTripOnPostgreSQL issues every credential type from a cluster process whose ledger,
// log and records are in PostgreSQL, and verifies each offline with the log key alone; the VIN credential
// is kept there for vinVCLatest.
func TestCredentialsRoundTripOnPostgreSQL(t *testing.T) {
	ctx := context.Background()
	p := startPGCluster(t, node.ClusterConfig{})
	cl := p.cl
	owner, dev, car := p.car(t)

	at := time.Now().Add(time.Second).Truncate(time.Second)
	var subs []telemetry.Submission
	for i, p := range []struct {
		km       float64
		lat, lon float64
	}{{1200.5, 48.8566, 2.3522}, {1201.25, 48.8600, 2.3600}, {1203, 48.8700, 2.3800}} {
		ts := at.Add(time.Duration(i) * time.Second)
		signals := []telemetry.EventSignal{
			{Name: credential.SignalOdometer, Timestamp: ts, Value: p.km},
			{Name: credential.SignalLocation, Timestamp: ts, Value: map[string]any{"latitude": p.lat, "longitude": p.lon}},
		}
		if i == 0 {
			signals = append(signals, telemetry.EventSignal{Name: credential.SignalVIN, Timestamp: ts, Value: "YV1XZ16H9P2000001"})
		}
		subs = append(subs, testnode.Record(t, dev, car, fmt.Sprint("pg-", i), ts, signals...))
	}
	res, err := cl.PostEvents(ctx, subs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Status != telemetry.StatusAccepted {
			t.Fatalf("record: %+v", r)
		}
	}
	tok, err := cl.SignIn(ctx, owner.Key)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cl.Node(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rfc := func(d time.Duration) string { return at.Add(d).UTC().Format(time.RFC3339) }
	for _, c := range []struct {
		req   client.CredentialRequest
		check func(*credential.Claims) bool
	}{
		{client.CredentialRequest{Type: "odometer", At: rfc(time.Second)},
			func(c *credential.Claims) bool {
				return c.Odometer == 1201.25 && c.MeasuredAt.Equal(at.Add(time.Second))
			}},
		{client.CredentialRequest{Type: "mileage", From: rfc(0), To: rfc(2 * time.Second)},
			func(c *credential.Claims) bool { return c.Distance == 2.5 }},
		{client.CredentialRequest{Type: "movement", From: rfc(0), To: rfc(3 * time.Second)},
			func(c *credential.Claims) bool {
				return len(c.Cells) == 2 && c.Cells[0] == credential.Cell(48.8566, 2.3522) && c.Cells[1] == credential.Cell(48.8700, 2.3800)
			}},
		{client.CredentialRequest{Type: "vin"}, func(c *credential.Claims) bool { return c.VIN == "YV1XZ16H9P2000001" }},
	} {
		t.Run(c.req.Type, func(t *testing.T) {
			// Records reach PostgreSQL through the stream: ask until the last one is there.
			var issued *client.IssuedCredential
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				issued, err = cl.IssueCredential(ctx, tok.AccessToken, car, c.req)
				var ae *client.APIError
				if err == nil || !errors.As(err, &ae) || ae.Code != "no_readings" || time.Now().After(deadline) {
					break
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := credential.Verify(issued.SDJWT, info.LogKey, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != c.req.Type || got.VehicleID != car || !c.check(got) || got.EvidenceChecked != (c.req.Type != "movement") {
				t.Fatalf("%+v", got)
			}
			if c.req.Type == "vin" {
				// The VIN credential is kept in PostgreSQL, and DIMO's vinVCLatest answers with it.
				resp, err := cl.GraphQL(ctx, tok.AccessToken, fmt.Sprintf(`{ vinVCLatest(tokenId: %d) { vin rawVC } }`, car), nil)
				if err != nil || len(resp.Errors) > 0 {
					t.Fatalf("vinVCLatest: %v %+v", err, resp)
				}
				var r struct {
					VinVCLatest *struct{ Vin, RawVC string }
				}
				if err := json.Unmarshal(resp.Data, &r); err != nil || r.VinVCLatest == nil ||
					r.VinVCLatest.RawVC != issued.SDJWT || r.VinVCLatest.Vin != "YV1XZ16H9P2000001" {
					t.Fatalf("vinVCLatest: %+v %v", r.VinVCLatest, err)
				}
			}
		})
	}
}
