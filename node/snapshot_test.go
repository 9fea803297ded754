package node

import (
	"bytes"
	"compress/gzip"
	"encoding/gob"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/ledger"
)

func TestSnapshotsKeepNonceDeadlinesAndRefuseFormatOne(t *testing.T) {
	snap := ledger.Changes{Size: 3, LastTime: 1_800_000_000_500, NextVehicle: 1}
	for i, deadline := range []int64{1_799_999_999, 1_800_000_000, 1_800_003_600} {
		n := ledger.Nonce{Signer: common.Address{byte(i + 1)}, Deadline: deadline}
		n.Nonce.SetUint64(uint64(i))
		snap.Nonces = append(snap.Nonces, n)
	}
	want, err := ledger.Restore(snap)
	if err != nil {
		t.Fatal(err)
	}
	if want.UsedNonces() != 2 {
		t.Fatalf("Restore kept %d nonces; want 2 (the first one's deadline is before the log's second)", want.UsedNonces())
	}
	data, err := encodeSnapshot(snap)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest() != want.Digest() {
		t.Fatal("a decoded snapshot differs from the state it encodes")
	}

	// Format 1 was the bare gzipped gob, whose nonces had no deadline.
	var old bytes.Buffer
	zw := gzip.NewWriter(&old)
	if err := gob.NewEncoder(zw).Encode(snap); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	if _, err := decodeSnapshot(old.Bytes()); err == nil {
		t.Fatal("a format-1 snapshot was decoded; want it refused (the process replays the log instead)")
	}
}
