// Package web holds the node's browser code: the wallet module (src/wallet.js: keystore decryption,
// EIP-1193 wallets, EIP-712 signing, submission, error codes in words) and the consent screen's script
// (src/consent.js), bundled with ethers.js by esbuild into dist/ (go generate ./web, after npm ci in this
// directory). The bundle is committed, so go build needs no npm; CI rebuilds it and fails if it differs.
package web

import _ "embed"

//go:generate go run ./internal/build

// ConsentJS is the consent screen's script, ethers.js included (no external assets at run time).
//
//go:embed dist/consent.js
var ConsentJS []byte
