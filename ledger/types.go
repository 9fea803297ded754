package ledger

import (
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/holiman/uint256"
)

// TxType identifies one of the transaction types of the wire format.
type TxType uint8

// The transaction types. Their numeric values are part of the entry encoding (version 1) and never change.
const (
	TypeRegisterVehicle TxType = iota + 1
	TypeRegisterDevice
	TypePairDevice
	TypeUnpairDevice
	TypeTransferVehicle
	TypeBurnVehicle
	TypeRegisterApp
	TypeUpdateApp
	TypeGrant
	TypeRevoke
	TypeRenounce
	TypeSetRetention
	TypeEraseData
	typeEnd
)

// kind is the EIP-712 type of one message field.
type kind uint8

const (
	kindAddress kind = iota + 1
	kindString
	kindUint16
	kindUint256
	kindStringArray
	kindUint64
)

func (k kind) String() string {
	switch k {
	case kindAddress:
		return "address"
	case kindString:
		return "string"
	case kindUint16:
		return "uint16"
	case kindUint256:
		return "uint256"
	case kindStringArray:
		return "string[]"
	case kindUint64:
		return "uint64"
	}
	return "invalid"
}

// fieldID names a field of Tx; several types share a field (nonce, vehicleId, ...).
type fieldID uint8

const (
	fOwner fieldID = iota + 1
	fMake
	fModel
	fYear
	fNonce
	fDeadline
	fDevice
	fKind
	fMaker
	fVehicleID
	fTo
	fApp
	fName
	fRedirectURIs
	fPermissions
	fExpiresAt
	fPurpose
	fTermsURI
	fDays
	fBefore
)

// field is one member of an EIP-712 struct type, in declaration order.
type field struct {
	name string // the EIP-712 and JSON name
	id   fieldID
	kind kind
}

// schema describes one transaction type: its EIP-712 name and members.
type schema struct {
	name     string
	fields   []field
	typeHash [32]byte // keccak256 of the encoded type string
}

var (
	mOwner        = field{"owner", fOwner, kindAddress}
	mMake         = field{"make", fMake, kindString}
	mModel        = field{"model", fModel, kindString}
	mYear         = field{"year", fYear, kindUint16}
	mNonce        = field{"nonce", fNonce, kindUint256}
	mDeadline     = field{"deadline", fDeadline, kindUint256}
	mDevice       = field{"device", fDevice, kindAddress}
	mKind         = field{"kind", fKind, kindString}
	mMaker        = field{"maker", fMaker, kindAddress}
	mVehicleID    = field{"vehicleId", fVehicleID, kindUint256}
	mTo           = field{"to", fTo, kindAddress}
	mApp          = field{"app", fApp, kindAddress}
	mName         = field{"name", fName, kindString}
	mRedirectURIs = field{"redirectUris", fRedirectURIs, kindStringArray}
	mPermissions  = field{"permissions", fPermissions, kindStringArray}
	mExpiresAt    = field{"expiresAt", fExpiresAt, kindUint256}
	mPurpose      = field{"purpose", fPurpose, kindString}
	mTermsURI     = field{"termsUri", fTermsURI, kindString}
	mDays         = field{"days", fDays, kindUint16}
	mBefore       = field{"before", fBefore, kindUint64}
)

// schemas is indexed by TxType. The member lists are the public wire format: changing one breaks every
// signature ever made.
var schemas = [typeEnd]*schema{
	TypeRegisterVehicle: {name: "RegisterVehicle", fields: []field{mOwner, mMake, mModel, mYear, mNonce, mDeadline}},
	TypeRegisterDevice:  {name: "RegisterDevice", fields: []field{mDevice, mKind, mMaker, mNonce, mDeadline}},
	TypePairDevice:      {name: "PairDevice", fields: []field{mVehicleID, mDevice, mNonce, mDeadline}},
	TypeUnpairDevice:    {name: "UnpairDevice", fields: []field{mVehicleID, mDevice, mNonce, mDeadline}},
	TypeTransferVehicle: {name: "TransferVehicle", fields: []field{mVehicleID, mTo, mNonce, mDeadline}},
	TypeBurnVehicle:     {name: "BurnVehicle", fields: []field{mVehicleID, mNonce, mDeadline}},
	TypeRegisterApp:     {name: "RegisterApp", fields: []field{mApp, mOwner, mName, mRedirectURIs, mNonce, mDeadline}},
	TypeUpdateApp:       {name: "UpdateApp", fields: []field{mApp, mName, mRedirectURIs, mNonce, mDeadline}},
	TypeGrant:           {name: "Grant", fields: []field{mVehicleID, mApp, mPermissions, mExpiresAt, mPurpose, mTermsURI, mNonce, mDeadline}},
	TypeRevoke:          {name: "Revoke", fields: []field{mVehicleID, mApp, mNonce, mDeadline}},
	TypeRenounce:        {name: "Renounce", fields: []field{mVehicleID, mApp, mNonce, mDeadline}},
	TypeSetRetention:    {name: "SetRetention", fields: []field{mVehicleID, mDays, mNonce, mDeadline}},
	TypeEraseData:       {name: "EraseData", fields: []field{mVehicleID, mBefore, mNonce, mDeadline}},
}

func init() {
	for _, s := range schemas[1:] {
		s.typeHash = keccak([]byte(s.encodeType()))
	}
}

// encodeType returns the EIP-712 encodeType string, e.g. "BurnVehicle(uint256 vehicleId,uint256 nonce,uint256 deadline)".
func (s *schema) encodeType() string {
	var b strings.Builder
	b.WriteString(s.name)
	b.WriteByte('(')
	for i, f := range s.fields {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(f.kind.String())
		b.WriteByte(' ')
		b.WriteString(f.name)
	}
	b.WriteByte(')')
	return b.String()
}

// String returns the type's EIP-712 name, e.g. "PairDevice".
func (t TxType) String() string {
	if t.valid() {
		return schemas[t].name
	}
	return fmt.Sprintf("TxType(%d)", uint8(t))
}

func (t TxType) valid() bool { return t > 0 && t < typeEnd }

// ParseTxType returns the type with the given EIP-712 name.
func ParseTxType(s string) (TxType, bool) {
	for t := TxType(1); t < typeEnd; t++ {
		if schemas[t].name == s {
			return t, true
		}
	}
	return 0, false
}

// TxTypes lists every transaction type in wire order.
func TxTypes() []TxType {
	ts := make([]TxType, 0, typeEnd-1)
	for t := TxType(1); t < typeEnd; t++ {
		ts = append(ts, t)
	}
	return ts
}

// Signature is a 65-byte secp256k1 signature r || s || v, with v stored as 27 or 28.
type Signature [65]byte

// Tx is a transaction message of any type plus its signatures. Only the fields of its type's schema are
// meaningful; the others are zero.
type Tx struct {
	Type TxType

	Owner, Device, Maker, App, To common.Address
	Make, Model, Kind, Name       string
	Purpose, TermsURI             string
	Year, Days                    uint16 // Days: SetRetention's retention in days, 0 keeps until erased
	Before                        uint64 // EraseData's bound, unix seconds
	VehicleID, ExpiresAt          uint256.Int
	Nonce, Deadline               uint256.Int
	RedirectURIs, Permissions     []string

	Signatures []Signature
}

func (tx *Tx) address(id fieldID) *common.Address {
	switch id {
	case fOwner:
		return &tx.Owner
	case fDevice:
		return &tx.Device
	case fMaker:
		return &tx.Maker
	case fApp:
		return &tx.App
	case fTo:
		return &tx.To
	}
	panic("ledger: not an address field")
}

func (tx *Tx) str(id fieldID) *string {
	switch id {
	case fMake:
		return &tx.Make
	case fModel:
		return &tx.Model
	case fKind:
		return &tx.Kind
	case fName:
		return &tx.Name
	case fPurpose:
		return &tx.Purpose
	case fTermsURI:
		return &tx.TermsURI
	}
	panic("ledger: not a string field")
}

func (tx *Tx) u256(id fieldID) *uint256.Int {
	switch id {
	case fVehicleID:
		return &tx.VehicleID
	case fExpiresAt:
		return &tx.ExpiresAt
	case fNonce:
		return &tx.Nonce
	case fDeadline:
		return &tx.Deadline
	}
	panic("ledger: not a uint256 field")
}

func (tx *Tx) u16(id fieldID) *uint16 {
	switch id {
	case fYear:
		return &tx.Year
	case fDays:
		return &tx.Days
	}
	panic("ledger: not a uint16 field")
}

func (tx *Tx) u64(id fieldID) *uint64 {
	if id == fBefore {
		return &tx.Before
	}
	panic("ledger: not a uint64 field")
}

func (tx *Tx) strs(id fieldID) *[]string {
	switch id {
	case fRedirectURIs:
		return &tx.RedirectURIs
	case fPermissions:
		return &tx.Permissions
	}
	panic("ledger: not a string[] field")
}

// Permission names, as in DESIGN.md. They are the only permission strings a Grant may carry.
const (
	PermSignals             = "signals"
	PermLocationApproximate = "location:approximate"
	PermLocation            = "location"
	PermRaw                 = "raw"
	PermCredentials         = "credentials"
	PermInsights            = "insights"
	PermStream              = "stream"
	PermCommands            = "commands"
)

// Permissions lists every permission name in a stable order.
var Permissions = []string{
	PermSignals, PermLocationApproximate, PermLocation, PermRaw,
	PermCredentials, PermInsights, PermStream, PermCommands,
}

// KnownPermission reports whether p is a permission name.
func KnownPermission(p string) bool {
	for _, q := range Permissions {
		if p == q {
			return true
		}
	}
	return false
}

// Device kinds.
const (
	KindHardware = "hardware"
	KindSoftware = "software"
)

// TypedField is one member of an EIP-712 struct type, as eth_signTypedData_v4 JSON lists it.
type TypedField struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// TypedDataTypes returns the "types" object of eth_signTypedData_v4 for every transaction type, with
// EIP712Domain, keyed by type name.
func TypedDataTypes() map[string][]TypedField {
	out := map[string][]TypedField{
		"EIP712Domain": {{"name", "string"}, {"version", "string"}, {"salt", "bytes32"}},
	}
	for _, s := range schemas[1:] {
		fs := make([]TypedField, len(s.fields))
		for i, f := range s.fields {
			fs[i] = TypedField{f.name, f.kind.String()}
		}
		out[s.name] = fs
	}
	return out
}

// EncodeType returns the EIP-712 encodeType string of t, e.g.
// "BurnVehicle(uint256 vehicleId,uint256 nonce,uint256 deadline)".
func (t TxType) EncodeType() string { return schemas[t].encodeType() }
