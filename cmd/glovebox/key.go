package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

func init() {
	register(command{name: "key new", args: "--out FILE [--passphrase-file FILE] [--scrypt standard|light]",
		short: "create a secp256k1 key in a keystore file", run: runKeyNew})
	register(command{name: "key show", args: "FILE",
		short: "print the address of a keystore file", run: runKeyShow})
}

func runKeyNew(ctx context.Context, args []string) error {
	fl := newCommandFlags("key new", "--out FILE [--passphrase-file FILE] [--scrypt standard|light]",
		`Creates a new secp256k1 key and writes it, encrypted with a passphrase, to a Web3 Secret Storage (v3)
keystore file with mode 0600, the format of go-ethereum and every Ethereum wallet. An existing file is
never replaced. The passphrase comes from --passphrase-file, or is asked twice on the terminal. Prints the
key's EIP-55 address.`)
	out := fl.String("out", "", "keystore `FILE` to create (required)")
	passFile := fl.String("passphrase-file", envDefault("GLOVEBOX_PASSPHRASE_FILE", ""), "`FILE` holding the passphrase (env GLOVEBOX_PASSPHRASE_FILE; default: prompt)")
	scrypt := fl.String("scrypt", "standard", "key derivation cost: standard (256 MB, about a second: for real keys) or light (4 MB: for tests and demos only)")
	if _, err := parseArgs(fl, args, 0); err != nil {
		return err
	}
	if *out == "" {
		return usageError(fl, "missing --out")
	}
	n, p, err := scryptParams(*scrypt)
	if err != nil {
		return usageError(fl, "%v", err)
	}
	// Check first, so that nobody types a passphrase twice for nothing; the write itself uses O_EXCL.
	if _, err := os.Lstat(*out); err == nil {
		return fmt.Errorf("%s already exists; refusing to overwrite it", *out)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("couldn't check %s: %w", *out, err)
	}
	pass, err := newPassphrase(*passFile, "passphrase-file")
	if err != nil {
		return err
	}
	addr, err := writeNewKey(*out, pass, n, p)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, addr.Hex())
	return nil
}

func runKeyShow(ctx context.Context, args []string) error {
	fl := newCommandFlags("key show", "FILE",
		`Prints the EIP-55 address of a keystore file, read from its "address" field: no passphrase is needed.`)
	pos, err := parseArgs(fl, args, 1)
	if err != nil {
		return err
	}
	a, err := keystoreAddress(pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, a.Hex())
	return nil
}
