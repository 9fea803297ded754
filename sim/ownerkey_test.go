package sim

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"
)

// The demo owner's key file opens with the demo passphrase to the first owner's key, and is not
// rewritten once it exists.
func TestOwnerKeyFileOpensWithThePassphrase(t *testing.T) {
	spec := Specs(7, 1)[0]
	path := filepath.Join(t.TempDir(), "keys", OwnerKeyFile)
	if err := writeKeyFile(path, spec.OwnerKey, DemoPassphrase); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keystore.DecryptKey(b, DemoPassphrase)
	if err != nil {
		t.Fatal(err)
	}
	if k.Address != spec.Owner || !k.PrivateKey.Equal(spec.OwnerKey) {
		t.Fatalf("the key file holds %s, want %s", k.Address.Hex(), spec.Owner.Hex())
	}
	if _, err := keystore.DecryptKey(b, "wrong"); err == nil {
		t.Fatal("a wrong passphrase opened the key file")
	}
	other, _ := crypto.GenerateKey()
	if err := writeKeyFile(path, other, DemoPassphrase); err != nil {
		t.Fatal(err)
	}
	if b2, _ := os.ReadFile(path); string(b2) != string(b) {
		t.Fatal("an existing key file was rewritten")
	}
}
