package ledger

import (
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum/common"
)

// ParseAddress parses a hex address. All-lower or all-upper case is accepted; mixed case must be a correct
// EIP-55 checksum, since it is then most likely a typo.
//
// Every transaction and every telemetry record carries addresses, mostly the same few in mixed case, and
// checking a checksum is a Keccak hash: the checksums verified are remembered (within a bound).
func ParseAddress(s string) (common.Address, error) {
	var a common.Address
	if len(s) != 2+2*len(a) || s[0] != '0' || s[1] != 'x' {
		return common.Address{}, fmt.Errorf("%q is not a 0x-prefixed 20-byte hex address", s)
	}
	if _, err := hex.Decode(a[:], []byte(s[2:])); err != nil {
		return common.Address{}, fmt.Errorf("%q is not a 0x-prefixed 20-byte hex address", s)
	}
	if !mixedCase(s[2:]) || checksums.known(s) {
		return a, nil
	}
	if a.Hex() != s {
		return common.Address{}, fmt.Errorf("%q has a bad EIP-55 checksum", s)
	}
	checksums.add(s)
	return a, nil
}

// mixedCase reports whether hex digits hold both a lower-case and an upper-case letter: only such an
// address carries a checksum.
func mixedCase(digits string) bool {
	var lower, upper bool
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		lower = lower || ('a' <= c && c <= 'f')
		upper = upper || ('A' <= c && c <= 'F')
	}
	return lower && upper
}

// maxChecksums bounds the checksums remembered. Anyone may send transactions and records under any
// address, so the memory starts again empty when full: a sender of many addresses costs a hash per
// address, as without it.
const maxChecksums = 4096

// checksums remembers the mixed-case spellings ParseAddress verified.
var checksums = checksumSet{verified: map[string]struct{}{}}

type checksumSet struct {
	sync.RWMutex
	verified map[string]struct{}
}

func (c *checksumSet) known(s string) bool {
	c.RLock()
	_, ok := c.verified[s]
	c.RUnlock()
	return ok
}

func (c *checksumSet) add(s string) {
	c.Lock()
	if len(c.verified) >= maxChecksums {
		clear(c.verified)
	}
	c.verified[strings.Clone(s)] = struct{}{} // s may share a large buffer
	c.Unlock()
}
