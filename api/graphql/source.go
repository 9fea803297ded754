package graphql

import (
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/api/graphql/internal/exec"
)

// The source filter (SignalFilter.source). A value's source is the device that signed its record: the
// node accepts a record only from a device paired to the vehicle at the time, so the device address is
// the connection DIMO's source names. source is that address, 0x and 40 hexadecimal digits in any case
// (no EIP-55 checksum is demanded), or DIMO's DID of it, did:ethr:<chain id>:<address>, whose chain id
// (decimal digits) is not compared: a node serves one ledger.

// sourceOf returns the device address filter.source names, nil when filter sets no source, or a
// BAD_REQUEST error naming the argument.
func sourceOf(filter *exec.SignalFilter) (*common.Address, error) {
	if filter == nil || filter.Source == nil {
		return nil, nil
	}
	a, ok := parseSource(*filter.Source)
	if !ok {
		return nil, codedError(CodeBadRequest, "filter.source: %q is not a device address (0x and 40 hexadecimal digits) or did:ethr:<chain id>:<address>",
			*filter.Source)
	}
	return &a, nil
}

// parseSource parses a source string (see above).
func parseSource(s string) (common.Address, bool) {
	const did = "did:ethr:"
	if len(s) > len(did) && strings.EqualFold(s[:len(did)], did) {
		chain, addr, ok := strings.Cut(s[len(did):], ":")
		if !ok || chain == "" || strings.Trim(chain, "0123456789") != "" {
			return common.Address{}, false
		}
		s = addr
	}
	if len(s) != 42 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') || strings.Trim(s[2:], "0123456789abcdefABCDEF") != "" {
		return common.Address{}, false
	}
	return common.HexToAddress(s[2:]), true
}
