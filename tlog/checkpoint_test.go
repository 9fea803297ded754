package tlog

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

func TestOpenCheckpoint(t *testing.T) {
	s, v := testKeys(t, testOrigin)
	l := openLog(t, t.TempDir(), s)
	entries := testEntries("e", 0, 5)
	appendAll(t, l, entries, 5)
	own := l.Checkpoint()
	root := refRoot(t, entries)
	b64 := base64.StdEncoding.EncodeToString(root[:])

	otherSigner, otherVerifier := testKeys(t, testOrigin) // same name, different key
	_, renamedVerifier := testKeys(t, "example.com/other")
	witness, _ := testKeys(t, "witness.example")

	// sign signs text with the given signers.
	sign := func(text string, signers ...note.Signer) []byte {
		t.Helper()
		msg, err := note.Sign(&note.Note{Text: text}, signers...)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	// Set a padding bit of the last base64 digit: the same 32 bytes in a
	// non-canonical encoding that lenient decoders accept.
	const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	last := strings.IndexByte(digits, b64[len(b64)-2])
	nonCanonical := b64[:len(b64)-2] + string(digits[last^1]) + "="
	if h, err := base64.StdEncoding.DecodeString(nonCanonical); err != nil || !bytes.Equal(h, root[:]) {
		t.Fatalf("test setup: %q doesn't decode to the root (%v)", nonCanonical, err)
	}

	tests := []struct {
		name     string
		signed   []byte
		origin   string
		verifier note.Verifier
		wantOK   bool
	}{
		{"the node's own checkpoint is accepted", own, testOrigin, v, true},
		{"a checkpoint with a witness cosignature is accepted", sign(fmt.Sprintf("%s\n5\n%s\n", testOrigin, b64), s, witness), testOrigin, v, true},
		{"a checkpoint with an extension line is accepted", sign(fmt.Sprintf("%s\n5\n%s\nextension\n", testOrigin, b64), s), testOrigin, v, true},

		{"a checkpoint signed by a different key with the same name is rejected", sign(fmt.Sprintf("%s\n5\n%s\n", testOrigin, b64), otherSigner), testOrigin, v, false},
		{"the node's checkpoint is rejected by a different key's verifier", own, testOrigin, otherVerifier, false},
		{"the node's checkpoint is rejected by a verifier for another name", own, testOrigin, renamedVerifier, false},
		{"the node's checkpoint is rejected for a different origin", own, "example.com/other", v, false},
		{"a checkpoint with a modified size is rejected", bytes.Replace(own, []byte("\n5\n"), []byte("\n6\n"), 1), testOrigin, v, false},
		{"a checkpoint with a modified root is rejected", bytes.Replace(own, []byte(b64[:10]), []byte(strings.Repeat("A", 10)), 1), testOrigin, v, false},
		{"a checkpoint with a modified origin is rejected", bytes.Replace(own, []byte(testOrigin+"\n"), []byte("example.com/other\n"), 1), "example.com/other", v, false},
		{"a checkpoint without its signature is rejected", []byte(fmt.Sprintf("%s\n5\n%s\n", testOrigin, b64)), testOrigin, v, false},
		{"a checkpoint with only a witness signature is rejected", sign(fmt.Sprintf("%s\n5\n%s\n", testOrigin, b64), witness), testOrigin, v, false},
		{"a signed size with a leading zero is rejected", sign(fmt.Sprintf("%s\n05\n%s\n", testOrigin, b64), s), testOrigin, v, false},
		{"a signed size with a plus sign is rejected", sign(fmt.Sprintf("%s\n+5\n%s\n", testOrigin, b64), s), testOrigin, v, false},
		{"a signed negative size is rejected", sign(fmt.Sprintf("%s\n-5\n%s\n", testOrigin, b64), s), testOrigin, v, false},
		{"a signed size beyond int64 is rejected", sign(fmt.Sprintf("%s\n9223372036854775808\n%s\n", testOrigin, b64), s), testOrigin, v, false},
		{"a signed root in non-canonical base64 is rejected", sign(fmt.Sprintf("%s\n5\n%s\n", testOrigin, nonCanonical), s), testOrigin, v, false},
		{"a signed root of 31 bytes is rejected", sign(fmt.Sprintf("%s\n5\n%s\n", testOrigin, base64.StdEncoding.EncodeToString(root[:31])), s), testOrigin, v, false},
		{"a signed root of 33 bytes is rejected", sign(fmt.Sprintf("%s\n5\n%s\n", testOrigin, base64.StdEncoding.EncodeToString(append(root[:], 0))), s), testOrigin, v, false},
		{"a signed empty extension line is rejected", sign(fmt.Sprintf("%s\n5\n%s\n\nextension\n", testOrigin, b64), s), testOrigin, v, false},
		{"a signed note with only two lines is rejected", sign(fmt.Sprintf("%s\n5\n", testOrigin), s), testOrigin, v, false},
		{"garbage is rejected", []byte("not a note"), testOrigin, v, false},
		{"a nil verifier is rejected", own, testOrigin, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size, got, err := OpenCheckpoint(tt.signed, tt.origin, tt.verifier)
			if !tt.wantOK {
				if err == nil {
					t.Fatalf("OpenCheckpoint accepted it: size %d root %v", size, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if size != 5 || got != root {
				t.Fatalf("OpenCheckpoint = %d, %v; want 5, %v", size, got, root)
			}
		})
	}
}

func TestCheckpointTextIsTheFormatsEncoding(t *testing.T) {
	s, v := testKeys(t, testOrigin)
	l := openLog(t, t.TempDir(), s)
	entries := testEntries("e", 0, 3)
	appendAll(t, l, entries, 3)
	n, err := note.Open(l.Checkpoint(), note.VerifierList(v))
	if err != nil {
		t.Fatal(err)
	}
	root := refRoot(t, entries)
	want := log.Checkpoint{Origin: testOrigin, Size: 3, Hash: root[:]}.Marshal()
	if n.Text != string(want) {
		t.Fatalf("checkpoint text = %q, want %q", n.Text, want)
	}
	if len(n.Sigs) != 1 || n.Sigs[0].Name != testOrigin {
		t.Fatalf("signatures = %+v, want one by %s", n.Sigs, testOrigin)
	}
}

func TestGenerateKey(t *testing.T) {
	skey, vkey, err := GenerateKey(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != testOrigin || v.Name() != testOrigin || s.KeyHash() != v.KeyHash() {
		t.Fatalf("keys named %q/%q with hashes %08x/%08x", s.Name(), v.Name(), s.KeyHash(), v.KeyHash())
	}
	msg, err := note.Sign(&note.Note{Text: "hello\n"}, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Fatal(err)
	}
	_, vkey2, _ := GenerateKey(testOrigin)
	if vkey2 == vkey {
		t.Fatal("GenerateKey returned the same key twice")
	}
	if _, _, err := GenerateKey("has space"); err == nil {
		t.Fatal("GenerateKey accepted a name with a space")
	}
}
