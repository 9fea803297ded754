package credential_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/glovebox/glovebox/credential"
)

// interopDir holds the stock SD-JWT VC library (@sd-jwt/sd-jwt-vc, installed by `npm ci` from the
// committed package-lock.json) and the script that verifies with it.
const interopDir = "testdata/sdjwt-js"

// jsResult is what verify.mjs reports (see its header).
type jsResult struct {
	MetadataKid  string
	Header       map[string]any
	Claims       map[string]any
	Keys         []string
	Presented    map[string]any
	PresentedRaw string
	KB           map[string]any
	Tampered     string
	Expired      string
}

func requireNodeLibrary(t *testing.T) {
	t.Helper()
	_, errNode := exec.LookPath("node")
	_, errLib := os.Stat(filepath.Join(interopDir, "node_modules", "@sd-jwt", "sd-jwt-vc"))
	if errNode == nil && errLib == nil {
		return
	}
	msg := fmt.Sprintf("the stock SD-JWT VC library needs Node.js and `npm ci` in credential/%s (node: %v, library: %v)", interopDir, errNode, errLib)
	if os.Getenv("GLOVEBOX_REQUIRE_NODE") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// TestStockLibraryVerifiesCredentials has a real node issue each type of credential over HTTP, and the
// OpenWallet Foundation's SD-JWT VC library, in Node.js, verify it with the key it fetches from the
// node's /.well-known/jwt-vc-issuer, make a key-bound presentation of it that the Go verifier accepts,
// and refuse an altered disclosure and an expired credential.
func TestStockLibraryVerifiesCredentials(t *testing.T) {
	requireNodeLibrary(t)
	w := newWorld(t)
	n := w.n
	owner := signIn(t, n, w.owner)
	holder, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := json.Marshal(jose.JSONWebKey{Key: &holder.PublicKey})
	priv, _ := json.Marshal(jose.JSONWebKey{Key: holder})
	withHolder := `,"holder_key":` + string(pub) + `}`

	for _, c := range []struct {
		typ, body string
		keys      []string // the claims the holder may disclose, sorted
		expires   bool
	}{
		{"odometer", `{"type":"odometer","at":"` + rfc(w.start.Add(time.Hour)) + `"`, []string{"evidence", "vehicle_id"}, true},
		{"mileage", `{"type":"mileage","from":"` + rfc(w.start.Add(10*time.Minute)) + `","to":"` + rfc(w.end) + `"`, []string{"evidence", "vehicle_id"}, false},
		{"movement", `{"type":"movement","from":"` + rfc(w.start) + `","to":"` + rfc(w.end) + `"`, []string{"cells", "vehicle_id"}, false},
		{"vin", `{"type":"vin"`, []string{"evidence", "vehicle_id", "vin"}, true},
	} {
		t.Run(c.typ, func(t *testing.T) {
			status, code, cred := ask(t, n, owner, w.car, c.body+withHolder)
			if status != 200 {
				t.Fatalf("%d %s %s", status, code, cred)
			}
			goClaims, err := credential.Verify(cred, n.LogKey, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			nonce := fmt.Sprintf("nonce-%s-%d", c.typ, time.Now().UnixNano())
			in, _ := json.Marshal(map[string]any{"credential": cred, "now": time.Now().Unix(), "holderKey": json.RawMessage(priv),
				"nonce": nonce, "aud": "https://insurer.example"})
			cmd := exec.Command("node", "verify.mjs")
			cmd.Dir = interopDir
			cmd.Stdin = bytes.NewReader(in)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("node verify.mjs: %v\n%s", err, stderr.String())
			}
			var js jsResult
			if err := json.Unmarshal(out, &js); err != nil {
				t.Fatalf("%v: %s", err, out)
			}

			if js.Header["typ"] != "dc+sd-jwt" || js.Header["alg"] != "EdDSA" || js.Header["kid"] != js.MetadataKid {
				t.Fatalf("header %v, metadata kid %s", js.Header, js.MetadataKid)
			}
			if js.Claims["iss"] != n.URL || js.Claims["vct"] != credential.VCT(c.typ) || js.Claims["vehicle_id"] != float64(w.car) {
				t.Fatalf("claims %v", js.Claims)
			}
			if _, ok := js.Claims["exp"]; ok != c.expires {
				t.Fatalf("exp in the claims: %v, want %v", ok, c.expires)
			}
			if cnf, _ := js.Claims["cnf"].(map[string]any); cnf == nil || cnf["jwk"] == nil {
				t.Fatalf("no cnf.jwk: %v", js.Claims)
			}
			switch c.typ {
			case "odometer":
				if js.Claims["odometer_km"] != goClaims.Odometer || js.Claims["measured_at"] != goClaims.MeasuredAt.Format("2006-01-02T15:04:05.000Z") {
					t.Fatalf("library %v, Go %+v", js.Claims, goClaims)
				}
			case "mileage":
				if js.Claims["distance_km"] != goClaims.Distance {
					t.Fatalf("library %v km, Go %v km", js.Claims["distance_km"], goClaims.Distance)
				}
			case "movement":
				cells, _ := json.Marshal(js.Claims["cells"])
				want, _ := json.Marshal(goClaims.Cells)
				if !bytes.Equal(cells, want) || js.Claims["moved"] != true {
					t.Fatalf("library %s, Go %s", cells, want)
				}
			case "vin":
				if js.Claims["vin"] != w.vin {
					t.Fatalf("library VIN %v, want %s", js.Claims["vin"], w.vin)
				}
			}
			if c.typ != "movement" {
				ev, _ := js.Claims["evidence"].(map[string]any)
				if ev == nil || ev["checkpoint"] == nil || ev["records"] == nil || ev["pairings"] == nil {
					t.Fatalf("evidence %v", js.Claims["evidence"])
				}
			}
			if !slices.Equal(js.Keys, c.keys) {
				t.Fatalf("presentable keys %v, want %v", js.Keys, c.keys)
			}

			// The library's presentation discloses vehicle_id only and is bound to the holder key.
			for _, hidden := range []string{"evidence", "vin", "cells"} {
				if _, ok := js.Presented[hidden]; ok {
					t.Fatalf("the presentation discloses %s: %v", hidden, js.Presented)
				}
			}
			if js.KB["nonce"] != nonce || js.KB["aud"] != "https://insurer.example" {
				t.Fatalf("key binding %v", js.KB)
			}
			pres, err := credential.Verify(js.PresentedRaw, n.LogKey, time.Now())
			if err != nil {
				t.Fatalf("the Go verifier refuses the library's presentation: %v", err)
			}
			if pres.KeyBinding == nil || pres.KeyBinding.Nonce != nonce || !slices.Equal(pres.Disclosed, []string{"vehicle_id"}) || pres.EvidenceChecked {
				t.Fatalf("presentation: %+v", pres)
			}

			// The key-binding JWT covers exactly the presentation: a disclosure added to it, or a KB-JWT signed
			// by another key, is refused.
			cut := strings.LastIndex(js.PresentedRaw, "~") + 1
			_, all, _ := strings.Cut(cred, "~")
			added := js.PresentedRaw[:cut] + strings.Split(all, "~")[1] + "~" + js.PresentedRaw[cut:]
			other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: other}, (&jose.SignerOptions{}).WithType("kb+jwt"))
			body, _ := json.Marshal(js.KB)
			forged, _ := signer.Sign(body)
			forgedKB, _ := forged.CompactSerialize()
			for _, bad := range []struct{ name, pres, msg string }{
				{"a disclosure added", added, "sd_hash"},
				{"signed by another key", js.PresentedRaw[:cut] + forgedKB, "not signed by the holder key"},
			} {
				_, err := credential.Verify(bad.pres, n.LogKey, time.Now())
				if f, ok := err.(*credential.Failure); !ok || f.Check != credential.CheckKeyBinding || !strings.Contains(f.Msg, bad.msg) {
					t.Fatalf("%s: %v", bad.name, err)
				}
			}

			if strings.HasPrefix(js.Tampered, "accepted") {
				t.Fatalf("an altered disclosure: %s", js.Tampered)
			}
			if expired := js.Expired != "accepted"; expired != c.expires {
				t.Fatalf("a year later the library says %q (exp: %v)", js.Expired, c.expires)
			}
		})
	}
}
