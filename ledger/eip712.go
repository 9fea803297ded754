package ledger

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/binary"
	"fmt"
	"strconv"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// Domain is the EIP-712 domain of one log: {name: "Glovebox", version: "1", salt: keccak256(origin)}. It
// has no chainId, so that wallets sign it whatever chain they are on; the salt binds every signature to one
// log.
type Domain struct {
	Origin    string
	Salt      [32]byte
	separator [32]byte
}

// Domain name and version, fixed by the wire format.
const (
	DomainName    = "Glovebox"
	DomainVersion = "1"
)

const domainType = "EIP712Domain(string name,string version,bytes32 salt)"

// NewDomain returns the EIP-712 domain of the log with the given origin line.
func NewDomain(origin string) *Domain {
	d := &Domain{Origin: origin, Salt: keccak([]byte(origin))}
	var buf [128]byte
	th := keccak([]byte(domainType))
	nh := keccak([]byte(DomainName))
	vh := keccak([]byte(DomainVersion))
	copy(buf[0:], th[:])
	copy(buf[32:], nh[:])
	copy(buf[64:], vh[:])
	copy(buf[96:], d.Salt[:])
	d.separator = keccak(buf[:])
	return d
}

// Separator returns the EIP-712 domain separator (hashStruct of the domain).
func (d *Domain) Separator() [32]byte { return d.separator }

// hasher is a Keccak-256 state with two scratch buffers. Bytes reach the state only from in and leave it
// only through out: a slice handed to the state's interface methods escapes, so hashing a string or a
// stack array directly would allocate a copy on every call, and EIP-712 hashes several per transaction.
type hasher struct {
	k   crypto.KeccakState
	in  []byte // what the next sum hashes
	out []byte // 32 bytes the state writes its digest into
}

var hasherPool = sync.Pool{New: func() any { return &hasher{k: crypto.NewKeccakState(), out: make([]byte, 32)} }}

func getHasher() *hasher { return hasherPool.Get().(*hasher) }

func (h *hasher) put() {
	if cap(h.in) > 64<<10 {
		h.in = nil // a huge string[] should not stay pinned in the pool
	}
	hasherPool.Put(h)
}

// sum returns keccak256(h.in).
func (h *hasher) sum() (d [32]byte) {
	h.k.Reset()
	h.k.Write(h.in)
	h.k.Read(h.out)
	copy(d[:], h.out)
	return d
}

// sumString returns keccak256(s), through h.in.
func (h *hasher) sumString(s string) [32]byte {
	h.in = append(h.in[:0], s...)
	return h.sum()
}

// keccak returns keccak256 of the concatenated data.
func keccak(data ...[]byte) [32]byte {
	h := getHasher()
	h.in = h.in[:0]
	for _, b := range data {
		h.in = append(h.in, b...)
	}
	d := h.sum()
	h.put()
	return d
}

// HashStruct returns the EIP-712 hashStruct of the transaction's message.
func (tx *Tx) HashStruct() [32]byte {
	h := getHasher()
	d := tx.hashStruct(h)
	h.put()
	return d
}

// hashStruct is HashStruct with h's scratch space: the encoding of the message is gathered in a buffer
// of its own (enc) since strings and string arrays are hashed on the way, through h.in.
func (tx *Tx) hashStruct(h *hasher) [32]byte {
	s := schemas[tx.Type]
	var encBuf [32 * 10]byte // the largest message, Grant, encodes to 9 words
	enc := append(encBuf[:0], s.typeHash[:]...)
	var word [32]byte
	for _, f := range s.fields {
		switch f.kind {
		case kindAddress:
			clear(word[:12])
			copy(word[12:], tx.address(f.id)[:])
		case kindString:
			word = h.sumString(*tx.str(f.id))
		case kindUint16:
			clear(word[:30])
			binary.BigEndian.PutUint16(word[30:], *tx.u16(f.id))
		case kindUint64:
			clear(word[:24])
			binary.BigEndian.PutUint64(word[24:], *tx.u64(f.id))
		case kindUint256:
			word = tx.u256(f.id).Bytes32()
		case kindStringArray:
			list := *tx.strs(f.id)
			// The item hashes are gathered after the item being hashed: h.in holds hashes then item.
			h.in = h.in[:0]
			for _, item := range list {
				n := len(h.in)
				h.in = append(h.in, item...)
				h.k.Reset()
				h.k.Write(h.in[n:])
				h.k.Read(h.out)
				h.in = append(h.in[:n], h.out...)
			}
			word = h.sum()
		}
		enc = append(enc, word[:]...)
	}
	h.in = append(h.in[:0], enc...)
	return h.sum()
}

// Digest returns the EIP-712 signing digest keccak256(0x1901 || domainSeparator || hashStruct(message)),
// the hash that eth_signTypedData_v4 signs.
func (d *Domain) Digest(tx *Tx) [32]byte {
	h := getHasher()
	hs := tx.hashStruct(h)
	h.in = append(append(append(h.in[:0], 0x19, 0x01), d.separator[:]...), hs[:]...)
	digest := h.sum()
	h.put()
	return digest
}

// secp256k1halfN is half the order of the secp256k1 group, big-endian. Signatures with s above it are the
// malleable twin of a canonical one and are refused, so an entry's signature bytes are unique.
var secp256k1halfN = common.FromHex("0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0")

// PersonalHash is the EIP-191 personal_sign hash of msg: keccak256("\x19Ethereum Signed Message:\n" +
// len(msg) + msg), what wallet.signMessage(bytes) signs. Device records, sign-in messages and MQTT logins
// are signed so; Recover gives the signer.
func PersonalHash(msg []byte) [32]byte {
	var h [32]byte
	k := crypto.NewKeccakState()
	k.Write([]byte("\x19Ethereum Signed Message:\n" + strconv.Itoa(len(msg))))
	k.Write(msg)
	k.Read(h[:])
	return h
}

// Recover returns the address that produced sig over digest. It refuses non-canonical signatures
// (v not 27/28, high s, zero r or s).
func Recover(digest [32]byte, sig Signature) (common.Address, error) {
	v := sig[64]
	if v != 27 && v != 28 {
		return common.Address{}, errorf(CodeBadSignature, "signature v must be 27 or 28")
	}
	if bytes.Compare(sig[32:64], secp256k1halfN) > 0 {
		return common.Address{}, errorf(CodeBadSignature, "signature s is not in the lower half of the curve order")
	}
	if allZero(sig[0:32]) || allZero(sig[32:64]) {
		return common.Address{}, errorf(CodeBadSignature, "signature r or s is zero")
	}
	var raw [65]byte
	copy(raw[:], sig[:])
	raw[64] -= 27
	pub, err := crypto.Ecrecover(digest[:], raw[:])
	if err != nil {
		return common.Address{}, errorf(CodeBadSignature, "signature does not recover: %v", err)
	}
	var a common.Address
	h := keccak(pub[1:])
	copy(a[:], h[12:])
	return a, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Sign signs tx in domain d with key, as eth_signTypedData_v4 would, and appends the signature to
// tx.Signatures.
func (d *Domain) Sign(tx *Tx, key *ecdsa.PrivateKey) error {
	digest := d.Digest(tx)
	raw, err := crypto.Sign(digest[:], key)
	if err != nil {
		return fmt.Errorf("couldn't sign %s: %w", tx.Type, err)
	}
	var s Signature
	copy(s[:], raw)
	s[64] += 27
	tx.Signatures = append(tx.Signatures, s)
	return nil
}

// Signers recovers the signer of every signature on tx, in signature order.
func (d *Domain) Signers(tx *Tx) ([]common.Address, error) {
	if len(tx.Signatures) == 0 {
		return nil, errorf(CodeMissingSignature, "the transaction carries no signature")
	}
	digest := d.Digest(tx)
	signers := make([]common.Address, len(tx.Signatures))
	for i, sig := range tx.Signatures {
		a, err := Recover(digest, sig)
		if err != nil {
			return nil, err
		}
		for _, prev := range signers[:i] {
			if prev == a {
				return nil, errorf(CodeMalformed, "two signatures by %s", a.Hex())
			}
		}
		signers[i] = a
	}
	return signers, nil
}
