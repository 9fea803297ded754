package credential

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/go-jose/go-jose/v4"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Media type and header values of SD-JWT VC.
const (
	MediaType = "application/dc+sd-jwt" // the Content-Type of an issued credential
	Typ       = "dc+sd-jwt"             // the JWS typ header
	SDAlg     = "sha-256"               // _sd_alg: the only hash this package issues and accepts
)

// A disclosure is one selectively disclosable object property (RFC 9901 §4.2.1): the base64url text of
// the JSON array [salt, name, value], whose SHA-256 digest (base64url) sits in the payload's _sd.
type disclosure struct {
	Encoded string // as it travels after a ~
	Name    string
	Value   json.RawMessage
}

// newDisclosure makes a disclosure of name = value with a fresh 128-bit salt.
func newDisclosure(name string, value any) (disclosure, error) {
	var salt [16]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return disclosure{}, fmt.Errorf("couldn't make a salt: %w", err)
	}
	var v []byte
	var err error
	if ev, ok := value.(*Evidence); ok { // a megabyte of escaped records
		v, err = ev.marshal()
	} else {
		v, err = marshal(value)
	}
	if err != nil {
		return disclosure{}, fmt.Errorf("couldn't encode claim %s: %w", name, err)
	}
	// [salt, name, value], written out rather than encoded again: encoding a json.RawMessage would
	// validate and compact the value once more (a megabyte for a mileage's evidence).
	n, err := marshal(name)
	if err != nil {
		return disclosure{}, err
	}
	arr := make([]byte, 0, len(v)+len(n)+32)
	arr = append(append(append(append(append(arr, `["`...), base64.RawURLEncoding.EncodeToString(salt[:])...), `",`...), n...), ',')
	arr = append(append(arr, v...), ']')
	return disclosure{Encoded: encodeBase64(arr), Name: name, Value: v}, nil
}

// decodeBase64 is base64.RawURLEncoding.DecodeString, a long input's halves decoded on two cores (the
// first half whole groups of four characters; text with line breaks, which the decoder skips, in one).
func decodeBase64(s string) ([]byte, error) {
	enc := base64.RawURLEncoding
	if len(s) < 256<<10 || strings.IndexByte(s, '\n') >= 0 || strings.IndexByte(s, '\r') >= 0 {
		return enc.DecodeString(s)
	}
	half := len(s) / 2 / 4 * 4
	dst := make([]byte, enc.DecodedLen(len(s)))
	var n1 int
	var err1 error
	var wg sync.WaitGroup
	// each half is given only its part of dst: Decode writes eight bytes at a time where dst has room
	wg.Go(func() { n1, err1 = enc.Decode(dst[:enc.DecodedLen(half)], []byte(s[:half])) })
	n2, err2 := enc.Decode(dst[enc.DecodedLen(half):], []byte(s[half:]))
	wg.Wait()
	if err1 != nil {
		return nil, err1
	}
	if err2 != nil {
		if e, ok := err2.(base64.CorruptInputError); ok {
			return nil, e + base64.CorruptInputError(half)
		}
		return nil, err2
	}
	return dst[:n1+n2], nil
}

// encodeBase64 is base64.RawURLEncoding.EncodeToString, a long input's halves encoded on two cores.
func encodeBase64(src []byte) string {
	enc := base64.RawURLEncoding
	if len(src) < 256<<10 {
		return enc.EncodeToString(src)
	}
	half := len(src) / 2 / 3 * 3 // whole 3-byte groups: the first half's text ends where the second's starts
	dst := make([]byte, enc.EncodedLen(len(src)))
	var wg sync.WaitGroup
	wg.Go(func() { enc.Encode(dst[:enc.EncodedLen(half)], src[:half]) })
	enc.Encode(dst[enc.EncodedLen(half):], src[half:])
	wg.Wait()
	return string(dst)
}

// digest is the _sd digest of the disclosure: base64url(SHA-256(the ASCII of its encoded form)).
func (d disclosure) digest() string { return digestOf(d.Encoded) }

func digestOf(encoded string) string {
	h := sha256.Sum256([]byte(encoded))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// parseDisclosure decodes one disclosure as RFC 9901 §7.1 step 3 says: base64url, a JSON array of three
// elements (salt string, claim name string, value); array-element disclosures (two elements) are not
// used by these credentials and are refused.
func parseDisclosure(encoded string) (disclosure, error) { return parseDisclosureInto(encoded, nil) }

// parseDisclosureInto is parseDisclosure, and when ev is not nil it decodes the value of an "evidence"
// disclosure straight into *ev (Value is then nil): a mileage's evidence is a megabyte, read once, its
// records' events left as the JSON strings they are (validated, unquoted by the record checks). The
// JSON is read strictly: RFC 8259, valid UTF-8, no member name twice in an object (parsers differ on
// which one wins), the evidence's members exactly, each event a string.
func parseDisclosureInto(encoded string, ev **wireEvidence) (disclosure, error) {
	raw, err := decodeBase64(encoded)
	if err != nil {
		return disclosure{}, fmt.Errorf("a disclosure is not base64url: %w", err)
	}
	bad := fmt.Errorf("a disclosure is not a JSON array [salt, name, value]")
	dec := jsontext.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '[' {
		return disclosure{}, bad
	}
	var strs [2]string
	for i := range strs {
		if dec.PeekKind() != '"' {
			return disclosure{}, fmt.Errorf("a disclosure's salt and name must be strings")
		}
		tok, err := dec.ReadToken()
		if err != nil {
			return disclosure{}, bad
		}
		strs[i] = tok.String()
	}
	name := strs[1]
	if name == "_sd" || name == "..." {
		return disclosure{}, fmt.Errorf("a disclosure may not name %q", name)
	}
	d := disclosure{Encoded: encoded, Name: name}
	switch k := dec.PeekKind(); {
	case k == 0 || k == ']':
		return disclosure{}, bad
	case ev != nil && name == DisclosureEvidence:
		var e wireEvidence
		if err := jsonv2.UnmarshalDecode(dec, &e, jsonv2.RejectUnknownMembers(true)); err != nil {
			return disclosure{}, fmt.Errorf("the evidence does not decode: %v", err)
		}
		for i, r := range e.Records {
			if r.Event.Kind() != '"' {
				return disclosure{}, fmt.Errorf("the evidence does not decode: the event of record %d is not a string", i)
			}
		}
		*ev = &e
	default:
		v, err := dec.ReadValue()
		if err != nil {
			return disclosure{}, bad
		}
		d.Value = json.RawMessage(v.Clone())
	}
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != ']' {
		return disclosure{}, bad
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return disclosure{}, bad
	}
	return d, nil
}

// decodeEvidence decodes a disclosed evidence strictly: the members of Evidence and no others, each
// once, names matched exactly.
func decodeEvidence(raw []byte) (*Evidence, error) {
	var ev Evidence
	if err := jsonv2.Unmarshal(raw, &ev, jsonv2.RejectUnknownMembers(true)); err != nil {
		return nil, err
	}
	return &ev, nil
}

// marshal encodes JSON without HTML escaping (so that '<', '>' and '&' in evidence stay as they are).
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// sign makes the issuer-signed JWT: header {"alg":"EdDSA","kid":…,"typ":"dc+sd-jwt"} over payload.
func sign(payload []byte, s *noteSigner) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: s},
		(&jose.SignerOptions{}).WithType(Typ).WithHeader(jose.HeaderKey("kid"), s.key.KeyID))
	if err != nil {
		return "", fmt.Errorf("couldn't make a JWS signer: %w", err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("couldn't sign the credential: %w", err)
	}
	return obj.CompactSerialize()
}

// split separates an SD-JWT into its issuer-signed JWT, its disclosures and its key-binding JWT (empty
// without one): <JWT>~<D1>~…~<Dn>~[<KB-JWT>].
func split(s string) (jwt string, disclosures []string, kb string, err error) {
	s = strings.TrimSpace(s)
	parts := strings.Split(s, "~")
	if len(parts) < 2 || parts[0] == "" {
		return "", nil, "", fmt.Errorf("not an SD-JWT: want <issuer JWT>~<disclosures>~")
	}
	jwt, kb = parts[0], parts[len(parts)-1]
	disclosures = parts[1 : len(parts)-1]
	for _, d := range disclosures {
		if d == "" {
			return "", nil, "", fmt.Errorf("not an SD-JWT: an empty disclosure between two ~")
		}
	}
	return jwt, disclosures, kb, nil
}

// Present returns the credential with only the disclosures of the named claims (a holder's
// presentation, RFC 9901 §4): the issuer-signed JWT is unchanged, the others are left out.
func Present(sdjwt string, claims ...string) (string, error) {
	jwt, ds, kb, err := split(sdjwt)
	if err != nil {
		return "", err
	}
	if kb != "" {
		return "", fmt.Errorf("the credential already carries a key-binding JWT")
	}
	keep := map[string]bool{}
	for _, c := range claims {
		keep[c] = true
	}
	out := jwt + "~"
	for _, enc := range ds {
		d, err := parseDisclosure(enc)
		if err != nil {
			return "", err
		}
		if keep[d.Name] {
			out += enc + "~"
		}
	}
	return out, nil
}

// PeekIssuer returns the iss claim of a credential WITHOUT verifying anything, to choose the key to
// verify it with (a verifier that keeps one log key per node). Never trust it before Verify.
func PeekIssuer(sdjwt string) (string, error) {
	jwt, _, _, err := split(sdjwt)
	if err != nil {
		return "", err
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("the issuer JWT is not three dot-separated parts")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("the JWT payload is not base64url")
	}
	var p struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(raw, &p); err != nil || p.Iss == "" {
		return "", fmt.Errorf("the JWT payload names no issuer")
	}
	return p.Iss, nil
}
