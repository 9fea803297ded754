package node

import (
	"bytes"
	"compress/gzip"
	"encoding/gob"
	"fmt"
	"io"

	"github.com/glovebox/glovebox/ledger"
)

// encodeSnapshot packs a full ledger snapshot for the identity_snapshots table: gob, gzipped.
func encodeSnapshot(c ledger.Changes) ([]byte, error) {
	var buf bytes.Buffer
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
