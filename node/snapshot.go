package node

import (
	"bytes"
	"compress/gzip"
	"encoding/gob"
	"fmt"
	"io"
	"strings"

	"github.com/glovebox/glovebox/ledger"
)

// snapshotFormat opens every stored snapshot. Format 2 holds each used nonce's deadline (the state forgets
// nonces past it); format 1 had no such line and is not read: a process that finds one replays the log.
const snapshotFormat = "glovebox-snapshot/2\n"

// encodeSnapshot packs a full ledger snapshot for the identity_snapshots table: snapshotFormat, then the
// gob of ledger.Changes, gzipped.
func encodeSnapshot(c ledger.Changes) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(snapshotFormat)
	zw := gzip.NewWriter(&buf)
	if err := gob.NewEncoder(zw).Encode(c); err != nil {
		return nil, fmt.Errorf("couldn't encode the snapshot: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeSnapshot unpacks encodeSnapshot's bytes into a state.
func decodeSnapshot(data []byte) (*ledger.State, error) {
	data, ok := bytes.CutPrefix(data, []byte(snapshotFormat))
	if !ok {
		return nil, fmt.Errorf("couldn't decode the snapshot: not of format %q", strings.TrimSpace(snapshotFormat))
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("couldn't decode the snapshot: %w", err)
	}
	var c ledger.Changes
	if err := gob.NewDecoder(zr).Decode(&c); err != nil {
		return nil, fmt.Errorf("couldn't decode the snapshot: %w", err)
	}
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return nil, fmt.Errorf("couldn't decode the snapshot: %w", err)
	}
	return ledger.Restore(c)
}
