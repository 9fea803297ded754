package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/tlog"
)

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func post(t *testing.T, url, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func errCode(t *testing.T, body []byte) string {
	t.Helper()
	var eb api.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		t.Fatalf("not an error body: %s", body)
	}
	return eb.Error.Code
}

func TestRequestsWithBadInputGetAStableCodeAndChangeNothing(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	owner := testnode.NewKey(t)
	n.Vehicle(t, owner)
	before, _ := n.Client.StateDigest(context.Background())
	good, _ := json.Marshal(n.Sign(t, &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: owner.Address, Make: "A", Model: "B", Year: 2020}, owner))
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"not JSON", "POST", "/v1/transactions", "{", 400, "malformed"},
		{"an unknown type", "POST", "/v1/transactions", `{"type":"Mint","message":{},"signatures":[]}`, 400, "malformed"},
		{"an unknown top-level field", "POST", "/v1/transactions", strings.Replace(string(good), `{"type"`, `{"extra":1,"type"`, 1), 400, "malformed"},
		{"no signatures", "POST", "/v1/transactions", strings.Replace(string(good), string(mustSigs(t, good)), `[]`, 1), 400, "missing_signature"},
		{"a short signature", "POST", "/v1/transactions", strings.Replace(string(good), `"signatures":["0x`, `"signatures":["0x00`, 1), 400, "bad_signature"},
		{"a tampered message", "POST", "/v1/transactions", strings.Replace(string(good), `"make":"A"`, `"make":"C"`, 1), 403, "wrong_signer"},
		{"a batch over the limit", "POST", "/v1/transactions", "[" + strings.Repeat(string(good)+",", api.MaxBatch) + string(good) + "]", 413, "too_large"},
		{"a body over the limit", "POST", "/v1/transactions", `"` + strings.Repeat("x", api.MaxBatchBody) + `"`, 413, "too_large"},
		{"an unknown vehicle", "GET", "/v1/vehicles/99", "", 404, "unknown_vehicle"},
		{"a bad vehicle id", "GET", "/v1/vehicles/x", "", 400, "malformed"},
		{"a bad address", "GET", "/v1/devices/0x12", "", 400, "malformed"},
		{"an unknown device", "GET", "/v1/devices/0x000000000000000000000000000000000000dEaD", "", 404, "unknown_device"},
		{"an unknown app", "GET", "/v1/apps/0x000000000000000000000000000000000000dEaD", "", 404, "unknown_app"},
		{"an entry beyond the log", "GET", "/v1/transactions/5", "", 404, "not_found"},
		{"a negative entry", "GET", "/v1/transactions/-1", "", 400, "malformed"},
		{"an unknown route", "GET", "/v2/nothing", "", 404, "not_found"},
		{"a wrong method", "DELETE", "/v1/transactions", "", 405, "method_not_allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, n.URL+c.path, strings.NewReader(c.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status || errCode(t, body) != c.code {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, body, c.status, c.code)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
		})
	}
	after, _ := n.Client.StateDigest(context.Background())
	if *before != *after {
		t.Fatalf("refused requests changed the state: %+v → %+v", before, after)
	}
}

func mustSigs(t *testing.T, txJSON []byte) []byte {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(txJSON, &m); err != nil {
		t.Fatal(err)
	}
	return m["signatures"]
}

func TestABatchAnswersEachTransactionInOrder(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	owner, other := testnode.NewKey(t), testnode.NewKey(t)
	var txs []*ledger.Tx
	for i := 0; i < 5; i++ {
		txs = append(txs, n.Sign(t, &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: owner.Address, Make: "Kia", Model: "EV6", Year: 2024}, owner))
	}
	txs[2] = n.Sign(t, &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: owner.Address, Make: "Kia", Model: "EV6", Year: 2024}, other)
	txs[4] = txs[3] // the same transaction twice: the second is a replay
	body, _ := json.Marshal(txs)
	status, out := post(t, n.URL+"/v1/transactions", string(body))
	if status != 200 {
		t.Fatalf("HTTP %d %s", status, out)
	}
	var items []api.BatchItem
	if err := json.Unmarshal(out, &items); err != nil {
		t.Fatal(err)
	}
	want := []string{"", "", "wrong_signer", "", "nonce_used"}
	var ids []uint64
	for i, it := range items {
		code := ""
		if it.Error != nil {
			code = it.Error.Code
			if it.Error.Index == nil || *it.Error.Index != i {
				t.Errorf("item %d: error index %v", i, it.Error.Index)
			}
		} else {
			ids = append(ids, it.Result.VehicleID)
		}
		if code != want[i] {
			t.Errorf("item %d: got %q, want %q", i, code, want[i])
		}
	}
	if len(ids) != 3 || ids[0] != 1 || ids[1] != 2 || ids[2] != 3 {
		t.Fatalf("accepted vehicles %v, want 1 2 3 in order", ids)
	}
	// Each accepted item's inclusion proof (the batch's are computed together) proves its entry in the
	// tree its checkpoint signs.
	info, err := n.Client.Node(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(info.LogKey)
	if err != nil {
		t.Fatal(err)
	}
	for i, it := range items {
		if it.Receipt == nil {
			continue
		}
		size, root, err := tlog.OpenCheckpoint([]byte(it.Receipt.Checkpoint), info.Origin, v)
		if err != nil || size != it.Receipt.TreeSize {
			t.Fatalf("item %d: checkpoint of size %d (receipt: %d): %v", i, size, it.Receipt.TreeSize, err)
		}
		proof := make(xtlog.RecordProof, len(it.Receipt.InclusionProof))
		for j, p := range it.Receipt.InclusionProof {
			if b, err := base64.StdEncoding.DecodeString(p); err != nil || copy(proof[j][:], b) != 32 {
				t.Fatalf("item %d: proof hash %q", i, p)
			}
		}
		leaf, err := hex.DecodeString(strings.TrimPrefix(it.Receipt.Hash, "0x"))
		if err != nil || len(leaf) != 32 {
			t.Fatalf("item %d: hash %q", i, it.Receipt.Hash)
		}
		if err := xtlog.CheckRecord(proof, size, root, it.Receipt.Index, xtlog.Hash(leaf)); err != nil {
			t.Errorf("item %d (entry %d): %v", i, it.Receipt.Index, err)
		}
	}
}

func TestReceiptsAndReadsAgree(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	ctx := context.Background()
	owner := testnode.NewKey(t)
	id := n.Vehicle(t, owner)
	dev := n.PairedDevice(t, owner, id, ledger.KindHardware)
	app := n.App(t, owner)
	rc := n.Grant(t, owner, id, app.Address, time.Now().Add(24*time.Hour).Unix(), ledger.PermSignals)

	got, err := n.Client.Transaction(ctx, rc.Index)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash != rc.Hash || got.Type != "Grant" || len(got.Signers) != 1 || got.Signers[0] != owner.Address.Hex() {
		t.Fatalf("GET receipt %+v does not match %+v", got, rc)
	}
	v, err := n.Client.Vehicle(ctx, id)
	if err != nil || v.Owner != owner.Address.Hex() || len(v.Devices) != 1 || v.Devices[0].Device != dev.Address.Hex() || len(v.Grants) != 1 {
		t.Fatalf("vehicle %+v %v", v, err)
	}
	acc, err := n.Client.Account(ctx, owner.Address)
	if err != nil || len(acc.Vehicles) != 1 || len(acc.Apps) != 1 || len(acc.GrantsGiven) != 1 {
		t.Fatalf("account %+v %v", acc, err)
	}
	appAcc, err := n.Client.Account(ctx, app.Address)
	if err != nil || appAcc.App == nil || len(appAcc.GrantsHeld) != 1 {
		t.Fatalf("app account %+v %v", appAcc, err)
	}
	d, err := n.Client.Device(ctx, dev.Address)
	if err != nil || d.VehicleID != id {
		t.Fatalf("device %+v %v", d, err)
	}
	// Lower-case addresses are accepted and answered checksummed.
	status, body := get(t, n.URL+"/v1/apps/"+strings.ToLower(app.Address.Hex()))
	if status != 200 || !bytes.Contains(body, []byte(app.Address.Hex())) {
		t.Fatalf("GET app by lower-case address: %d %s", status, body)
	}
	status, body = get(t, n.URL+"/v1/eip712")
	if status != 200 || !bytes.Contains(body, []byte(`"salt":"0x`)) {
		t.Fatalf("eip712: %d %s", status, body)
	}
}

// TestDeletingTheReadModelGivesTheSameAnswers deletes identity.db and restarts: the node replays its log
// and every answer is the same.
func TestDeletingTheReadModelGivesTheSameAnswers(t *testing.T) {
	dir := t.TempDir()
	n := testnode.Start(t, testnode.Options{Dir: dir})
	ctx := context.Background()
	owner, buyer := testnode.NewKey(t), testnode.NewKey(t)
	id := n.Vehicle(t, owner)
	n.PairedDevice(t, owner, id, ledger.KindSoftware)
	app := n.App(t, owner)
	n.Grant(t, owner, id, app.Address, time.Now().Add(time.Hour).Unix(), ledger.PermSignals, ledger.PermLocation)
	tx := &ledger.Tx{Type: ledger.TypeTransferVehicle, To: buyer.Address}
	tx.VehicleID.SetUint64(id)
	n.Submit(t, tx, owner)
	id2 := n.Vehicle(t, buyer)
	n.Grant(t, buyer, id2, app.Address, time.Now().Add(time.Hour).Unix(), ledger.PermRaw)

	answers := func(n *testnode.Node) string {
		var b strings.Builder
		d, err := n.Client.StateDigest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		json.NewEncoder(&b).Encode(d)
		for _, id := range []uint64{id, id2} {
			v, err := n.Client.Vehicle(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			json.NewEncoder(&b).Encode(v)
		}
		for _, a := range []testnode.Key{owner, buyer, app} {
			acc, err := n.Client.Account(ctx, a.Address)
			if err != nil {
				t.Fatal(err)
			}
			json.NewEncoder(&b).Encode(acc)
		}
		return b.String()
	}
	// Wait until the read model has caught up, so that the first restart loads it rather than replays.
	want := answers(n)
	n.Stop()
	n = testnode.Start(t, testnode.Options{Dir: dir})
	if got := answers(n); got != want {
		t.Fatalf("after a restart:\n%s\nwant\n%s", got, want)
	}
	n.Stop()
	for _, f := range []string{"identity.db", "identity.db-wal", "identity.db-shm"} {
		removeIfExists(t, dir+"/"+f)
	}
	n = testnode.Start(t, testnode.Options{Dir: dir})
	if got := answers(n); got != want {
		t.Fatalf("after deleting the read model:\n%s\nwant\n%s", got, want)
	}
}

// plainReceipt has api.Receipt's fields and tags but not its hand-written MarshalJSON.
type plainReceipt api.Receipt

// TestSubmissionAnswersAreWhatEncodingJSONWouldWrite checks the hand-encoded receipts of single and batch
// submissions byte for byte against encoding/json's encoding of the decoded receipt.
func TestSubmissionAnswersAreWhatEncodingJSONWouldWrite(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	owner := testnode.NewKey(t)
	one, _ := json.Marshal(n.Sign(t, &ledger.Tx{Type: ledger.TypeRegisterVehicle, Owner: owner.Address, Make: "Seat", Model: "Leon", Year: 2019}, owner))
	status, body := post(t, n.URL+"/v1/transactions", string(one))
	if status != 200 {
		t.Fatalf("HTTP %d %s", status, body)
	}
	var rc plainReceipt
	if err := json.Unmarshal(body, &rc); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(rc)
	if string(body) != string(want)+"\n" {
		t.Fatalf("single answer\n%s\nencoding/json\n%s", body, want)
	}
	dev := testnode.NewKey(t)
	batch := []*ledger.Tx{
		n.Sign(t, &ledger.Tx{Type: ledger.TypeRegisterDevice, Device: dev.Address, Kind: ledger.KindHardware}, dev),
		n.Sign(t, &ledger.Tx{Type: ledger.TypeRegisterDevice, Device: dev.Address, Kind: ledger.KindHardware}, dev),
	}
	b, _ := json.Marshal(batch)
	status, body = post(t, n.URL+"/v1/transactions", string(b))
	if status != 200 {
		t.Fatalf("HTTP %d %s", status, body)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil || len(items) != 2 {
		t.Fatalf("%v %s", err, body)
	}
	var first plainReceipt
	json.Unmarshal(items[0], &first)
	want, _ = json.Marshal(first)
	var second api.ErrorBody
	json.Unmarshal(items[1], &second)
	wantErr, _ := json.Marshal(second)
	if string(items[0]) != string(want) || string(items[1]) != string(wantErr) || second.Error.Code != "already_registered" {
		t.Fatalf("batch answer\n%s\nwant items\n%s\n%s", body, want, wantErr)
	}
}
