package ledger

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// issueTypes is the wire format exactly as the ledger issue fixes it, in wire (TxType) order. The tests
// check the package against this text and against go-ethereum, not against the package's own tables.
var issueTypes = []string{
	"RegisterVehicle(address owner,string make,string model,uint16 year,uint256 nonce,uint256 deadline)",
	"RegisterDevice(address device,string kind,address maker,uint256 nonce,uint256 deadline)",
	"PairDevice(uint256 vehicleId,address device,uint256 nonce,uint256 deadline)",
	"UnpairDevice(uint256 vehicleId,address device,uint256 nonce,uint256 deadline)",
	"TransferVehicle(uint256 vehicleId,address to,uint256 nonce,uint256 deadline)",
	"BurnVehicle(uint256 vehicleId,uint256 nonce,uint256 deadline)",
	"RegisterApp(address app,address owner,string name,string[] redirectUris,uint256 nonce,uint256 deadline)",
	"UpdateApp(address app,string name,string[] redirectUris,uint256 nonce,uint256 deadline)",
	"Grant(uint256 vehicleId,address app,string[] permissions,uint256 expiresAt,string purpose,string termsUri,uint256 nonce,uint256 deadline)",
	"Revoke(uint256 vehicleId,address app,uint256 nonce,uint256 deadline)",
	"Renounce(uint256 vehicleId,address app,uint256 nonce,uint256 deadline)",
	"SetRetention(uint256 vehicleId,uint16 days,uint256 nonce,uint256 deadline)",
	"EraseData(uint256 vehicleId,uint64 before,uint256 nonce,uint256 deadline)",
}

// eip712Domain is the domain type a wallet is given: no chainId, no verifyingContract.
var eip712Domain = []apitypes.Type{{Name: "name", Type: "string"}, {Name: "version", Type: "string"}, {Name: "salt", Type: "bytes32"}}

// parseTypeString splits "Name(type member,…)" into the name and apitypes members.
func parseTypeString(tb testing.TB, s string) (string, []apitypes.Type) {
	tb.Helper()
	name, rest, ok := strings.Cut(s, "(")
	if !ok || !strings.HasSuffix(rest, ")") {
		tb.Fatalf("bad type string %q", s)
	}
	var members []apitypes.Type
	for _, m := range strings.Split(strings.TrimSuffix(rest, ")"), ",") {
		typ, field, ok := strings.Cut(m, " ")
		if !ok {
			tb.Fatalf("bad member %q in %q", m, s)
		}
		members = append(members, apitypes.Type{Name: field, Type: typ})
	}
	return name, members
}

// typedDataFor builds the eth_signTypedData_v4 payload a wallet would get for tx in the log named origin:
// the message is tx.MessageJSON() as a JSON decoder hands it over.
func typedDataFor(tb testing.TB, origin string, tx *Tx) apitypes.TypedData {
	tb.Helper()
	name, members := parseTypeString(tb, issueTypes[tx.Type-1])
	var msg apitypes.TypedDataMessage
	if err := json.Unmarshal(tx.MessageJSON(), &msg); err != nil {
		tb.Fatalf("MessageJSON of %s is not JSON: %v", tx.Type, err)
	}
	return apitypes.TypedData{
		Types:       apitypes.Types{"EIP712Domain": eip712Domain, name: members},
		PrimaryType: name,
		Domain: apitypes.TypedDataDomain{
			Name:    "Glovebox",
			Version: "1",
			Salt:    hexutil.Encode(crypto.Keccak256([]byte(origin))),
		},
		Message: msg,
	}
}

// gethDigest is the digest go-ethereum's signer computes for tx.
func gethDigest(tb testing.TB, origin string, tx *Tx) [32]byte {
	tb.Helper()
	h, _, err := apitypes.TypedDataAndHash(typedDataFor(tb, origin, tx))
	if err != nil {
		tb.Fatalf("apitypes refuses %s: %v", tx.Type, err)
	}
	return [32]byte(h)
}

// gethSign signs tx over go-ethereum's digest with crypto.Sign, as a wallet does (v + 27).
func gethSign(tb testing.TB, tx *Tx, signers ...actor) *Tx {
	tb.Helper()
	digest := gethDigest(tb, testOrigin, tx)
	tx.Signatures = nil
	for _, a := range signers {
		raw, err := crypto.Sign(digest[:], a.key)
		if err != nil {
			tb.Fatal(err)
		}
		raw[64] += 27
		tx.Signatures = append(tx.Signatures, Signature(raw))
	}
	return tx
}

func TestWireTypesAreExactlyTheIssues(t *testing.T) {
	if got := TxTypes(); len(got) != len(issueTypes) {
		t.Fatalf("TxTypes() has %d types, the issue %d", len(got), len(issueTypes))
	}
	for i, want := range issueTypes {
		name, members := parseTypeString(t, want)
		t.Run(name+" encodes its type as the issue writes it", func(t *testing.T) {
			typ, ok := ParseTxType(name)
			if !ok || typ != TxTypes()[i] || typ.String() != name {
				t.Fatalf("ParseTxType(%q) = %v, %v; want wire number %d", name, typ, ok, i+1)
			}
			if got := schemas[typ].encodeType(); got != want {
				t.Errorf("encodeType = %s\nwant         %s", got, want)
			}
			td := apitypes.TypedData{Types: apitypes.Types{name: members}}
			if got := string(td.EncodeType(name)); got != want {
				t.Errorf("go-ethereum encodeType = %s\nwant                    %s", got, want)
			}
		})
	}
	t.Run("the domain type is name, version and salt, without chainId", func(t *testing.T) {
		want := []apitypes.Type{{Name: "name", Type: "string"}, {Name: "version", Type: "string"}, {Name: "salt", Type: "bytes32"}}
		if !reflect.DeepEqual(eip712Domain, want) {
			t.Fatalf("test domain type %v, want %v", eip712Domain, want)
		}
		td := apitypes.TypedData{Types: apitypes.Types{"EIP712Domain": eip712Domain}}
		if got := string(td.EncodeType("EIP712Domain")); got != domainType {
			t.Fatalf("go-ethereum encodes the domain type as %s, the package as %s", got, domainType)
		}
	})
}

func TestServedTypesAreTheIssues(t *testing.T) {
	served := TypedDataTypes()
	if len(served) != len(issueTypes)+1 {
		t.Fatalf("TypedDataTypes() has %d types, want the %d of the issue and EIP712Domain", len(served), len(issueTypes))
	}
	asAPI := func(fs []TypedField) []apitypes.Type {
		out := make([]apitypes.Type, len(fs))
		for i, f := range fs {
			out[i] = apitypes.Type{Name: f.Name, Type: f.Type}
		}
		return out
	}
	t.Run("the served EIP712Domain is name, version and salt", func(t *testing.T) {
		if got := asAPI(served["EIP712Domain"]); !reflect.DeepEqual(got, eip712Domain) {
			t.Fatalf("served %v", got)
		}
	})
	for i, line := range issueTypes {
		name, members := parseTypeString(t, line)
		t.Run("the served "+name+" is the issue's, and go-ethereum signs it to the same digest", func(t *testing.T) {
			if got := asAPI(served[name]); !reflect.DeepEqual(got, members) {
				t.Fatalf("served %v\nwant %v", got, members)
			}
			typ := TxTypes()[i]
			if typ.EncodeType() != line {
				t.Fatalf("EncodeType() = %s", typ.EncodeType())
			}
			// A client that only has GET /v1/eip712 and the message builds the same digest.
			tx := message(typ, 3, testStart)
			td := typedDataFor(t, testOrigin, tx)
			td.Types = apitypes.Types{}
			for k, v := range served {
				td.Types[k] = asAPI(v)
			}
			h, _, err := apitypes.TypedDataAndHash(td)
			if err != nil {
				t.Fatal(err)
			}
			if [32]byte(h) != testDomain.Digest(tx) {
				t.Fatal("digest over the served types differs")
			}
		})
	}
}

func TestDomainSeparatorMatchesGoEthereum(t *testing.T) {
	for _, origin := range []string{testOrigin, "example.com/glovebox", "", "glövebox.example/лог"} {
		t.Run(fmt.Sprintf("origin %q", origin), func(t *testing.T) {
			d := NewDomain(origin)
			if d.Origin != origin || d.Salt != [32]byte(crypto.Keccak256([]byte(origin))) {
				t.Fatalf("NewDomain(%q) = origin %q salt %x", origin, d.Origin, d.Salt)
			}
			td := apitypes.TypedData{
				Types:  apitypes.Types{"EIP712Domain": eip712Domain},
				Domain: apitypes.TypedDataDomain{Name: DomainName, Version: DomainVersion, Salt: hexutil.Encode(d.Salt[:])},
			}
			sep, err := td.HashStruct("EIP712Domain", td.Domain.Map())
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Separator(); got != [32]byte(sep) {
				t.Fatalf("Separator() = %x, go-ethereum %x", got, sep)
			}
		})
	}
}

// digestCase is a message for the go-ethereum comparison. When signers is not nil the fixture (newFixture)
// accepts the message signed by them.
type digestCase struct {
	name    string
	tx      *Tx
	signers []actor
}

func digestCases() []digestCase {
	var cs []digestCase
	for _, typ := range TxTypes() {
		cs = append(cs, digestCase{"the fixture's " + typ.String(), message(typ, 1000+uint64(typ), testStart), rightSigners(typ)})
	}
	m := func(typ TxType, edit func(tx *Tx)) *Tx {
		tx := message(typ, 2000+uint64(typ), testStart)
		edit(tx)
		return tx
	}
	maxU256 := func(tx *Tx) { tx.Nonce.SetAllOne() }
	cs = append(cs,
		digestCase{"a RegisterVehicle with unicode make and model", m(TypeRegisterVehicle, func(tx *Tx) {
			tx.Make, tx.Model = "Škoda", "Octavia RS ⚡ 電気 🚗"
		}), []actor{alice}},
		digestCase{"a RegisterVehicle with characters JSON escapes", m(TypeRegisterVehicle, func(tx *Tx) {
			tx.Make, tx.Model = `Rolls-Royce <"Phantom"> & \ co`, "U+2028\u2028here"
		}), nil},
		digestCase{"a RegisterVehicle with the largest nonce and year", m(TypeRegisterVehicle, func(tx *Tx) {
			maxU256(tx)
			tx.Year = 65535
		}), nil},
		digestCase{"a RegisterDevice without maker", m(TypeRegisterDevice, func(tx *Tx) {
			tx.Maker = [20]byte{}
			tx.Kind = KindSoftware
		}), []actor{spare}},
		digestCase{"a RegisterApp with no redirect URI", m(TypeRegisterApp, func(tx *Tx) {
			tx.RedirectURIs = []string{}
		}), []actor{dev, fleet}},
		digestCase{"a RegisterApp with one unicode redirect URI", m(TypeRegisterApp, func(tx *Tx) {
			tx.Name, tx.RedirectURIs = "Flotte Überall 🚚", []string{"https://fleet.example/回调"}
		}), []actor{dev, fleet}},
		digestCase{"a RegisterApp with several redirect URIs", m(TypeRegisterApp, func(tx *Tx) {
			tx.RedirectURIs = []string{"https://fleet.example/cb", "http://localhost:3000/cb", "http://[::1]:80/cb", "https://fleet.example/cb?step=2&x=ü"}
		}), []actor{dev, fleet}},
		digestCase{"an UpdateApp with no redirect URI", m(TypeUpdateApp, func(tx *Tx) {
			tx.RedirectURIs = nil
		}), []actor{dev}},
		digestCase{"an UpdateApp with one redirect URI and a unicode name", m(TypeUpdateApp, func(tx *Tx) {
			tx.Name, tx.RedirectURIs = "保険アプリ", []string{"https://insurer.example/新"}
		}), []actor{dev}},
		digestCase{"a Grant with no permission", m(TypeGrant, func(tx *Tx) {
			tx.Permissions = []string{}
		}), nil},
		digestCase{"a Grant with one permission and no terms", m(TypeGrant, func(tx *Tx) {
			tx.Permissions, tx.TermsURI = []string{PermRaw}, ""
		}), []actor{alice}},
		digestCase{"a Grant with every permission and a unicode purpose", m(TypeGrant, func(tx *Tx) {
			tx.Permissions = slices.Clone(Permissions)
			tx.Purpose = "Assurance au kilomètre — 走行距離 🚗"
		}), []actor{alice}},
		digestCase{"a Grant with a purpose spanning lines", m(TypeGrant, func(tx *Tx) {
			tx.Purpose = "line one\nline two\ttabbed"
		}), nil},
		digestCase{"a Revoke of a huge vehicle id", m(TypeRevoke, func(tx *Tx) {
			tx.VehicleID.SetAllOne()
		}), nil},
		digestCase{"a SetRetention keeping data until erased", m(TypeSetRetention, func(tx *Tx) {
			tx.Days = 0
		}), []actor{alice}},
		digestCase{"a SetRetention of the largest uint16", m(TypeSetRetention, func(tx *Tx) {
			tx.Days = math.MaxUint16
		}), nil},
		digestCase{"an EraseData of everything before the epoch", m(TypeEraseData, func(tx *Tx) {
			tx.Before = 0
		}), []actor{alice}},
		digestCase{"an EraseData with the largest uint64", m(TypeEraseData, func(tx *Tx) {
			tx.Before = math.MaxUint64
		}), nil},
	)
	return cs
}

func TestDigestMatchesGoEthereum(t *testing.T) {
	for _, c := range digestCases() {
		t.Run(c.name+" has go-ethereum's digest", func(t *testing.T) {
			want := gethDigest(t, testOrigin, c.tx)
			if got := testDomain.Digest(c.tx); got != want {
				t.Fatalf("Digest = %x\ngo-ethereum %x\nmessage %s", got, want, c.tx.MessageJSON())
			}
			other := NewDomain("other.example/log")
			if got, want := other.Digest(c.tx), gethDigest(t, "other.example/log", c.tx); got != want {
				t.Fatalf("in another log: Digest = %x, go-ethereum %x", got, want)
			}
			if other.Digest(c.tx) == testDomain.Digest(c.tx) {
				t.Fatal("two logs share a digest: the salt does not bind the signature")
			}
		})
	}
}

func TestSignedByGoEthereumIsAccepted(t *testing.T) {
	for _, c := range digestCases() {
		if c.signers == nil {
			continue
		}
		t.Run(c.name+" signed over go-ethereum's digest is accepted", func(t *testing.T) {
			w := newFixture(t)
			tx := gethSign(t, c.tx, c.signers...)
			signers, err := testDomain.Signers(tx)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(signers, addrs(c.signers...)) {
				t.Fatalf("Signers = %v, want %v", signers, addrs(c.signers...))
			}
			w.mustApply(tx)
			// The same bytes submitted as JSON decode to the same transaction.
			j, err := tx.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			back, err := DecodeTxJSON(j)
			if err != nil {
				t.Fatal(err)
			}
			if !sameTx(back, tx) {
				t.Fatalf("JSON round trip changed the transaction:\n%+v\n%+v", back, tx)
			}
		})
	}
}

// TestDigestCoversEveryField changes one member at a time and demands a new digest.
func TestDigestCoversEveryField(t *testing.T) {
	for _, typ := range TxTypes() {
		for _, f := range schemas[typ].fields {
			t.Run(fmt.Sprintf("changing %s.%s changes the digest", typ, f.name), func(t *testing.T) {
				tx := message(typ, 7, testStart)
				before := testDomain.Digest(tx)
				switch f.kind {
				case kindAddress:
					tx.address(f.id)[19] ^= 1
				case kindString:
					*tx.str(f.id) += "x"
				case kindUint16:
					*tx.u16(f.id)++
				case kindUint64:
					*tx.u64(f.id)++
				case kindUint256:
					u := tx.u256(f.id)
					u.AddUint64(u, 1)
				case kindStringArray:
					*tx.strs(f.id) = append(*tx.strs(f.id), "")
				}
				if testDomain.Digest(tx) == before {
					t.Fatal("digest unchanged")
				}
				if testDomain.Digest(tx) != gethDigest(t, testOrigin, tx) {
					t.Fatal("digest differs from go-ethereum's after the change")
				}
			})
		}
	}
	t.Run("moving an item between adjacent string[] entries changes the digest", func(t *testing.T) {
		a := message(TypeGrant, 7, testStart)
		b := message(TypeGrant, 7, testStart)
		a.Permissions = []string{"ab", "c"}
		b.Permissions = []string{"a", "bc"}
		if testDomain.Digest(a) == testDomain.Digest(b) {
			t.Fatal("string[] items are not hashed separately")
		}
	})
}

func TestDigestGolden(t *testing.T) {
	var b strings.Builder
	for _, typ := range TxTypes() {
		tx := message(typ, 1000+uint64(typ), testStart)
		d := testDomain.Digest(tx)
		if d != gethDigest(t, testOrigin, tx) {
			t.Fatalf("%s: digest differs from go-ethereum's", typ)
		}
		fmt.Fprintf(&b, "%s %s 0x%s\n", typ, tx.MessageJSON(), hex.EncodeToString(d[:]))
	}
	golden(t, "digests.golden", []byte(b.String()))
}

func TestRecoverRefusesNonCanonicalSignatures(t *testing.T) {
	tx := sampleTx(t, TypeBurnVehicle)
	digest := testDomain.Digest(tx)
	good := tx.Signatures[0]
	if a, err := Recover(digest, good); err != nil || a != alice.addr {
		t.Fatalf("Recover(good) = %s, %v; want alice", a.Hex(), err)
	}
	for _, c := range []struct {
		name string
		edit func(s *Signature)
	}{
		{"v of 0", func(s *Signature) { s[64] = 0 }},
		{"v of 1", func(s *Signature) { s[64] = 1 }},
		{"v of 29", func(s *Signature) { s[64] = 29 }},
		{"the high-s twin", func(s *Signature) { *s = highS(*s) }},
		{"a zero r", func(s *Signature) { clear(s[:32]) }},
		{"a zero s", func(s *Signature) { clear(s[32:64]) }},
		{"an r beyond the field", func(s *Signature) {
			for i := range 32 {
				s[i] = 0xff
			}
		}},
	} {
		t.Run("a signature with "+c.name+" is a bad_signature", func(t *testing.T) {
			s := good
			c.edit(&s)
			_, err := Recover(digest, s)
			checkCode(t, err, CodeBadSignature)
		})
	}
	t.Run("flipping any bit of a signature never recovers alice", func(t *testing.T) {
		for i := range 65 * 8 {
			s := good
			s[i/8] ^= 1 << (i % 8)
			if a, err := Recover(digest, s); err == nil && a == alice.addr {
				t.Fatalf("bit %d flipped still recovers alice", i)
			}
		}
	})
}

// highS returns the malleable twin of a canonical signature: s' = n - s with the recovery bit flipped.
// It recovers to the same key, so only the low-s rule tells them apart.
func highS(sig Signature) Signature {
	n := crypto.S256().Params().N
	s := new(big.Int).SetBytes(sig[32:64])
	s.Sub(n, s)
	s.FillBytes(sig[32:64])
	sig[64] ^= 1 // 27 ↔ 28
	return sig
}
