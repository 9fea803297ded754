package ledger

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

// parseAddressSpec is ParseAddress as the rule reads, through go-ethereum's own helpers: the reference
// the fast path must agree with.
func parseAddressSpec(s string) (common.Address, error) {
	if !common.IsHexAddress(s) || !strings.HasPrefix(s, "0x") {
		return common.Address{}, fmt.Errorf("%q is not a 0x-prefixed 20-byte hex address", s)
	}
	a := common.HexToAddress(s)
	body := s[2:]
	if strings.ToLower(body) != body && strings.ToUpper(body) != body && a.Hex() != s {
		return common.Address{}, fmt.Errorf("%q has a bad EIP-55 checksum", s)
	}
	return a, nil
}

func TestParseAddress(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"0x8ba1f109551bD432803012645Ac136ddd64DBA72", "0x8ba1f109551bD432803012645Ac136ddd64DBA72", ""},
		{"0x8ba1f109551bd432803012645ac136ddd64dba72", "0x8ba1f109551bD432803012645Ac136ddd64DBA72", ""},
		{"0x8BA1F109551BD432803012645AC136DDD64DBA72", "0x8ba1f109551bD432803012645Ac136ddd64DBA72", ""},
		{"0x8ba1f109551bD432803012645Ac136ddd64DBA7", "", `"0x8ba1f109551bD432803012645Ac136ddd64DBA7" is not a 0x-prefixed 20-byte hex address`},
		{"0X8ba1f109551bd432803012645ac136ddd64dba72", "", `"0X8ba1f109551bd432803012645ac136ddd64dba72" is not a 0x-prefixed 20-byte hex address`},
		{"8ba1f109551bd432803012645ac136ddd64dba7211", "", `"8ba1f109551bd432803012645ac136ddd64dba7211" is not a 0x-prefixed 20-byte hex address`},
		{"0x8ba1f109551bd432803012645ac136ddd64dba7g", "", `"0x8ba1f109551bd432803012645ac136ddd64dba7g" is not a 0x-prefixed 20-byte hex address`},
		{"0x8ba1f109551BD432803012645Ac136ddd64DBA72", "", `"0x8ba1f109551BD432803012645Ac136ddd64DBA72" has a bad EIP-55 checksum`},
		{"0x0000000000000000000000000000000000000000", "0x0000000000000000000000000000000000000000", ""},
	} {
		for range 2 { // the second time from the remembered checksums
			a, err := ParseAddress(tc.in)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Errorf("%s: %v, want %s", tc.in, err, tc.err)
				}
				continue
			}
			if err != nil || a.Hex() != tc.want {
				t.Errorf("%s: %s %v, want %s", tc.in, a.Hex(), err, tc.want)
			}
		}
	}
}

// TestChecksumsAreRememberedWithinABound: senders of many addresses do not grow the memory of verified
// checksums past its bound. (That a spelling remembered lets no other spelling of its address pass is
// TestParseAddress's bad-checksum row, after the good one.)
func TestChecksumsAreRememberedWithinABound(t *testing.T) {
	for i := range 2*maxChecksums + 1 {
		var a common.Address
		binary.BigEndian.PutUint64(a[12:], uint64(i)*0x9e3779b97f4a7c15)
		a[0] = 0xab // a letter, so that the address carries a checksum
		got, err := ParseAddress(a.Hex())
		if err != nil || got != a {
			t.Fatalf("%s: %v %v", a.Hex(), got, err)
		}
		checksums.RLock()
		n := len(checksums.verified)
		checksums.RUnlock()
		if n > maxChecksums {
			t.Fatalf("%d checksums remembered, more than %d", n, maxChecksums)
		}
	}
}

// FuzzParseAddress: the fast path says what the rule says, for any string, with or without the
// checksum remembered.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"0x8ba1f109551bD432803012645Ac136ddd64DBA72", "0x8ba1f109551bd432803012645ac136ddd64dba72",
		"0x8BA1F109551BD432803012645AC136DDD64DBA72", "0x8ba1f109551BD432803012645Ac136ddd64DBA72", "0x", "0X00", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, werr := parseAddressSpec(s)
		for range 2 {
			got, err := ParseAddress(s)
			if (err == nil) != (werr == nil) || got != want || (err != nil && err.Error() != werr.Error()) {
				t.Fatalf("%q: %v %v, want %v %v", s, got, err, want, werr)
			}
		}
	})
}
