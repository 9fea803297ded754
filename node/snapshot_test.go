package node

import (
	"bytes"
	"compress/gzip"
	"encoding/gob"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/ledger"
)

func TestSnapshotsKeepNonceDeadlinesAndRefuseOlderFormats(t *testing.T) {
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
	data, err := encodeSnapshot(snap, want.Digest())
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
	// Format 2 was format 1 behind its own line, without a digest.
	if _, err := decodeSnapshot(append([]byte("glovebox-snapshot/2\n"), old.Bytes()...)); err == nil {
		t.Fatal("a format-2 snapshot was decoded; want it refused (the process replays the log instead)")
	}
}

// TestSnapshotsWhoseStateIsNotTheirDigestsAreRefused damages a snapshot in every way that still decodes
// (or nearly) and expects each refused: the caller replays the log rather than start from zero values.
func TestSnapshotsWhoseStateIsNotTheirDigestsAreRefused(t *testing.T) {
	snap := ledger.Changes{Size: 3, LastTime: 1_800_000_000_500, NextVehicle: 4}
	st, err := ledger.Restore(snap)
	if err != nil {
		t.Fatal(err)
	}
	good, err := encodeSnapshot(snap, st.Digest())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeSnapshot(good); err != nil {
		t.Fatalf("the undamaged snapshot: %v", err)
	}
	other := snap
	other.NextVehicle = 0 // as a field renamed in ledger.Changes would decode
	otherData, err := encodeSnapshot(other, st.Digest())
	if err != nil {
		t.Fatal(err)
	}
	header, _, _ := bytes.Cut(good[len(snapshotFormat):], []byte("\n"))
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"a state other than the digested one", otherData},
		{"a digest with one digit changed", bytes.Replace(good, header[len(header)-1:], []byte{header[len(header)-1] ^ 1}, 1)},
		{"another digest version", bytes.Replace(good, []byte(ledger.DigestVersion), []byte("glovebox-state/v1"), 1)},
		{"an upper-case digest", bytes.Replace(good, header[len(ledger.DigestVersion):], bytes.ToUpper(header[len(ledger.DigestVersion):]), 1)},
		{"no digest line", append([]byte(snapshotFormat), good[len(snapshotFormat)+len(header)+1:]...)},
		{"a truncated body", good[:len(good)-4]},
		{"nothing after the digest", good[:len(snapshotFormat)+len(header)+1]},
	} {
		if _, err := decodeSnapshot(tc.data); err == nil {
			t.Errorf("%s: decoded; want it refused", tc.name)
		}
	}
}
