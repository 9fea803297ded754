package tlog

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// GenerateKey makes a new Ed25519 note key pair named origin (wraps
// note.GenerateKey), as C2SP tlog-checkpoint recommends that the log's key
// name match its origin line. signerKey is secret and goes to
// note.NewSigner; verifierKey is public and goes to note.NewVerifier.
func GenerateKey(origin string) (signerKey, verifierKey string, err error) {
	signerKey, verifierKey, err = note.GenerateKey(rand.Reader, origin)
	if err == nil {
		// note.GenerateKey doesn't check the name; NewSigner does.
		_, err = note.NewSigner(signerKey)
	}
	if err != nil {
		return "", "", fmt.Errorf("tlog: generating key for %q: %w", origin, err)
	}
	return signerKey, verifierKey, nil
}

// OpenCheckpoint verifies a signed checkpoint note with verifier and checks
// the origin; it returns the tree size and root hash.
//
// It accepts a note that carries a valid signature by v (other signatures,
// such as witness cosignatures, are ignored) whose text is a C2SP
// checkpoint for origin with a canonical size, a 32-byte root hash and
// only non-empty extension lines, which are otherwise ignored.
func OpenCheckpoint(signed []byte, origin string, v note.Verifier) (size int64, root tlog.Hash, err error) {
	if v == nil {
		return 0, tlog.Hash{}, errors.New("tlog: opening checkpoint: nil verifier")
	}
	_, _, n, err := log.ParseCheckpoint(signed, origin, v)
	if err != nil {
		return 0, tlog.Hash{}, fmt.Errorf("tlog: opening checkpoint for %q: %w", origin, err)
	}
	size, root, err = parseCheckpointText(n.Text, origin)
	if err != nil {
		return 0, tlog.Hash{}, fmt.Errorf("tlog: opening checkpoint for %q: %w", origin, err)
	}
	return size, root, nil
}

// SignCheckpoint returns the signed C2SP checkpoint note for the tree of size entries with the given root.
func SignCheckpoint(origin string, size int64, root tlog.Hash, signer note.Signer) ([]byte, error) {
	return signCheckpoint(origin, size, root, signer)
}

// signCheckpoint returns the signed checkpoint note for a tree.
func signCheckpoint(origin string, size int64, root tlog.Hash, signer note.Signer) ([]byte, error) {
	text := log.Checkpoint{Origin: origin, Size: uint64(size), Hash: root[:]}.Marshal()
	signed, err := note.Sign(&note.Note{Text: string(text)}, signer)
	if err != nil {
		return nil, fmt.Errorf("signing checkpoint for size %d: %w", size, err)
	}
	return signed, nil
}

// parseOwnCheckpoint parses a checkpoint this log wrote earlier. With only
// a signer at hand the signature can't be verified, so it checks that the
// note carries a signature line for the signer's key name and hash; the
// caller checks the root against the stored data.
func parseOwnCheckpoint(signed []byte, origin string, signer note.Signer) (size int64, root tlog.Hash, err error) {
	_, err = note.Open(signed, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		return 0, tlog.Hash{}, fmt.Errorf("malformed checkpoint note: %w", err)
	}
	n := unverified.Note
	found := false
	for _, s := range n.UnverifiedSigs {
		if s.Name == signer.Name() && s.Hash == signer.KeyHash() {
			found = true
			break
		}
	}
	if !found {
		return 0, tlog.Hash{}, fmt.Errorf("checkpoint has no signature by this log's key %s+%08x", signer.Name(), signer.KeyHash())
	}
	return parseCheckpointText(n.Text, origin)
}

// parseCheckpointText parses the text of a checkpoint note strictly: the
// three mandatory lines must be exactly as log.Checkpoint.Marshal would
// write them (no leading zeros in the size, canonical base64 of a 32-byte
// hash), and extension lines, if any, must be non-empty.
func parseCheckpointText(text, origin string) (size int64, root tlog.Hash, err error) {
	var cp log.Checkpoint
	rest, err := cp.Unmarshal([]byte(text))
	if err != nil {
		return 0, tlog.Hash{}, err
	}
	if cp.Origin != origin {
		return 0, tlog.Hash{}, fmt.Errorf("checkpoint origin is %q, want %q", cp.Origin, origin)
	}
	if len(cp.Hash) != tlog.HashSize {
		return 0, tlog.Hash{}, fmt.Errorf("checkpoint root hash has %d bytes, want %d", len(cp.Hash), tlog.HashSize)
	}
	if cp.Size > math.MaxInt64 {
		return 0, tlog.Hash{}, fmt.Errorf("checkpoint size %d is too large", cp.Size)
	}
	if !strings.HasPrefix(text, string(cp.Marshal())) {
		return 0, tlog.Hash{}, errors.New("checkpoint size or root hash is not canonically encoded")
	}
	if len(rest) > 0 && (rest[0] == '\n' || strings.Contains(string(rest), "\n\n")) {
		return 0, tlog.Hash{}, errors.New("checkpoint has an empty extension line")
	}
	return int64(cp.Size), tlog.Hash(cp.Hash), nil
}
