package ledger

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable reason why a transaction or entry was refused. Codes are part of the
// public API: they never change meaning.
type Code string

// The rule codes. CodeDescriptions documents each one.
const (
	CodeMalformed         Code = "malformed"
	CodeBadSignature      Code = "bad_signature"
	CodeMissingSignature  Code = "missing_signature"
	CodeWrongSigner       Code = "wrong_signer"
	CodeNotOwner          Code = "not_owner"
	CodeNonceUsed         Code = "nonce_used"
	CodeExpired           Code = "expired"
	CodeDeadlineTooFar    Code = "deadline_too_far"
	CodeInvalidField      Code = "invalid_field"
	CodeUnknownVehicle    Code = "unknown_vehicle"
	CodeUnknownDevice     Code = "unknown_device"
	CodeUnknownApp        Code = "unknown_app"
	CodeUnknownPermission Code = "unknown_permission"
	CodeVehicleBurned     Code = "vehicle_burned"
	CodeAlreadyRegistered Code = "already_registered"
	CodeAlreadyPaired     Code = "already_paired"
	CodeKindTaken         Code = "kind_taken"
	CodeNotPaired         Code = "not_paired"
	CodeNoGrant           Code = "no_grant"
	CodeBadTime           Code = "bad_time"
	CodeInvisibleText     Code = "invisible_text"
	CodeRetentionTooLong  Code = "retention_too_long"
	CodeBeforeInFuture    Code = "before_in_future"
	CodeNeverOwned        Code = "never_owned"
)

// CodeDescriptions lists every rule code with its meaning, in the order of the documentation table.
var CodeDescriptions = []struct {
	Code        Code
	Description string
}{
	{CodeMalformed, "the transaction or entry cannot be decoded: bad JSON, unknown type, missing or unknown field, value of the wrong type, duplicate signer"},
	{CodeBadSignature, "a signature is not 65 bytes, is not canonical (v not 27/28, high s) or does not recover to a key"},
	{CodeMissingSignature, "a party that must sign did not (e.g. the device on PairDevice, the app on RegisterApp)"},
	{CodeWrongSigner, "a signature is by an account that is not entitled to sign this transaction"},
	{CodeNotOwner, "the transaction needs the vehicle's (or app's) current owner, who did not sign it"},
	{CodeNonceUsed, "a signer already used this nonce (replay)"},
	{CodeExpired, "the deadline is before the sequencer's clock, or a grant's expiresAt is not after it"},
	{CodeDeadlineTooFar, "the deadline is more than 24 hours after the sequencer's clock"},
	{CodeInvalidField, "a field breaks a rule: empty or over-long text, bad year, kind, redirect or terms URI, zero address, transfer to self"},
	{CodeUnknownVehicle, "no vehicle has this id"},
	{CodeUnknownDevice, "no device is registered with this address"},
	{CodeUnknownApp, "no app is registered with this address"},
	{CodeUnknownPermission, "a grant names a permission that does not exist, or signals:<name> for a name that is not a non-location catalogue signal (or names one twice)"},
	{CodeVehicleBurned, "the vehicle was burned and accepts no more transactions"},
	{CodeAlreadyRegistered, "the device or app address is already registered"},
	{CodeAlreadyPaired, "the device is already paired to a vehicle"},
	{CodeKindTaken, "the vehicle already has a paired device of this kind"},
	{CodeNotPaired, "the device is not paired to this vehicle"},
	{CodeNoGrant, "the app holds no grant on this vehicle"},
	{CodeBadTime, "a log entry's accept time is earlier than the previous entry's (replay only)"},
	{CodeInvisibleText, "a text field holds a character a reader does not see but that changes what they read: a bidirectional override or isolate, a zero-width character, a byte order mark, a tag character or another format character (checked at submission)"},
	{CodeRetentionTooLong, "SetRetention asks for more than 3650 days"},
	{CodeBeforeInFuture, "EraseData's before lies after the sequencer's clock"},
	{CodeNeverOwned, "EraseData is signed by an account that never owned the vehicle"},
}

// Error is a refusal with a stable code and a human message.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

func errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the rule code of err, or "" when err is not a rule error.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
