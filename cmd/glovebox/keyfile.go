package main

import (
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"
	"golang.org/x/term"
)

// stdout receives the commands' results (receipts, addresses, JSON); tests replace it. Prompts and
// diagnostics go to os.Stderr.
var stdout io.Writer = os.Stdout

// Keys are kept in Web3 Secret Storage (keystore v3) JSON files, the format of go-ethereum's keystore that
// every Ethereum wallet imports and exports.

// signer is a decrypted key and the file it came from.
type signer struct {
	file string
	key  *ecdsa.PrivateKey
	addr common.Address
}

// scryptParams returns the scrypt cost parameters of a --scrypt value.
func scryptParams(s string) (n, p int, err error) {
	switch s {
	case "standard":
		return keystore.StandardScryptN, keystore.StandardScryptP, nil
	case "light":
		return keystore.LightScryptN, keystore.LightScryptP, nil
	}
	return 0, 0, fmt.Errorf("--scrypt must be standard or light, not %q", s)
}

// readPassphraseFile returns the file's content without its trailing line break(s), as geth's
// --password files are read.
func readPassphraseFile(name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("couldn't read the passphrase file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// stdinIsTerminal reports whether passphrases can be prompted for.
func stdinIsTerminal() bool { return term.IsTerminal(int(os.Stdin.Fd())) }

// promptPassphrase reads a passphrase from the terminal without echo; the prompt goes to stderr.
// passFlag names the flag that would have avoided the prompt, for the error when there is no terminal.
func promptPassphrase(prompt, passFlag string) (string, error) {
	if !stdinIsTerminal() {
		return "", fmt.Errorf("no passphrase: give --%s (standard input is not a terminal to prompt on)", passFlag)
	}
	fmt.Fprint(os.Stderr, prompt)
	b, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return "", fmt.Errorf("couldn't read the passphrase: %w", err)
	}
	return string(b), nil
}

// newPassphrase gets the passphrase for a new key: from passFile, or prompted twice on the terminal.
func newPassphrase(passFile, passFlag string) (string, error) {
	var pass string
	if passFile != "" {
		p, err := readPassphraseFile(passFile)
		if err != nil {
			return "", err
		}
		pass = p
	} else {
		p, err := promptPassphrase("Passphrase for the new key: ", passFlag)
		if err != nil {
			return "", err
		}
		again, err := promptPassphrase("Repeat the passphrase: ", passFlag)
		if err != nil {
			return "", err
		}
		if p != again {
			return "", errors.New("the passphrases do not match")
		}
		pass = p
	}
	if pass == "" {
		return "", errors.New("refusing an empty passphrase: anyone who gets the file would have the key")
	}
	return pass, nil
}

// keystoreAddress returns the address a keystore file declares in its "address" field, without decrypting
// it.
func keystoreAddress(name string) (common.Address, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return common.Address{}, fmt.Errorf("couldn't read the key file: %w", withoutName(err))
	}
	var k struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal(b, &k); err != nil {
		return common.Address{}, fmt.Errorf("%s is not a keystore JSON file: %w", name, err)
	}
	a := k.Address
	if !strings.HasPrefix(a, "0x") && !strings.HasPrefix(a, "0X") {
		a = "0x" + a
	}
	if !common.IsHexAddress(a) {
		return common.Address{}, fmt.Errorf("%s has no valid \"address\" field", name)
	}
	return common.HexToAddress(a), nil
}

// withoutName drops the file name from a file system error. A key file's name comes from the command line
// or GLOVEBOX_KEY, which are always paths; should someone have put a private key there, it is not
// printed back.
func withoutName(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// loadSigner decrypts the keystore file name with the passphrase in passFile, or prompts for it.
// keyFlag and passFlag name the flags involved, for error messages.
func loadSigner(name, passFile, keyFlag, passFlag string) (*signer, error) {
	if name == "" {
		return nil, fmt.Errorf("missing --%s (a keystore file)", keyFlag)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the key file given by --%s: %w", keyFlag, withoutName(err))
	}
	var pass string
	if passFile != "" {
		if pass, err = readPassphraseFile(passFile); err != nil {
			return nil, err
		}
	} else {
		prompt := fmt.Sprintf("Passphrase for %s: ", name)
		if a, err := keystoreAddress(name); err == nil {
			prompt = fmt.Sprintf("Passphrase for %s (%s): ", name, a.Hex())
		}
		if pass, err = promptPassphrase(prompt, passFlag); err != nil {
			return nil, err
		}
	}
	k, err := keystore.DecryptKey(b, pass)
	if errors.Is(err, keystore.ErrDecrypt) {
		return nil, fmt.Errorf("couldn't decrypt %s: wrong passphrase", name)
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't decrypt %s: %w", name, err)
	}
	return &signer{file: name, key: k.PrivateKey, addr: k.Address}, nil
}

// writeNewKey generates a secp256k1 key, encrypts it with pass and writes it to name with mode 0600. It
// never replaces an existing file.
func writeNewKey(name, pass string, scryptN, scryptP int) (common.Address, error) {
	priv, err := crypto.GenerateKey()
	if err != nil {
		return common.Address{}, fmt.Errorf("couldn't generate a key: %w", err)
	}
	id, err := uuid.NewRandom()
	if err != nil {
		return common.Address{}, fmt.Errorf("couldn't generate a key id: %w", err)
	}
	k := &keystore.Key{Id: id, Address: crypto.PubkeyToAddress(priv.PublicKey), PrivateKey: priv}
	b, err := keystore.EncryptKey(k, pass, scryptN, scryptP)
	if err != nil {
		return common.Address{}, fmt.Errorf("couldn't encrypt the key: %w", err)
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return common.Address{}, fmt.Errorf("%s already exists; refusing to overwrite it", name)
	}
	if err != nil {
		return common.Address{}, fmt.Errorf("couldn't create the keystore: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return common.Address{}, fmt.Errorf("couldn't write the keystore: %w", err)
	}
	return k.Address, nil
}
