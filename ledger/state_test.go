package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/holiman/uint256"
)

func names(as []actor) string {
	if len(as) == 0 {
		return "nobody"
	}
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.name
	}
	return strings.Join(s, " and ")
}

// signerCase is one set of signatures on a transaction and the code Apply gives it ("" for accepted).
type signerCase struct {
	signers []actor
	want    Code
}

// authRow is one transaction type of the authorization matrix, against the fixture (newFixture).
type authRow struct {
	name  string
	msg   func(w *world) *Tx // the unsigned message; nil means w.msg(typ)
	typ   TxType
	cases []signerCase
}

func authMatrix() []authRow {
	ok := Code("")
	return []authRow{
		{typ: TypeRegisterVehicle, cases: []signerCase{
			{[]actor{alice}, ok},
			{[]actor{mallory}, CodeWrongSigner},
			{[]actor{bob}, CodeWrongSigner},
			{[]actor{alice, mallory}, CodeWrongSigner},
		}},
		{typ: TypeRegisterDevice, name: "RegisterDevice with a maker", cases: []signerCase{
			{[]actor{spare, maker}, ok},
			{[]actor{maker, spare}, ok},
			{[]actor{spare}, CodeMissingSignature},
			{[]actor{maker}, CodeMissingSignature},
			{[]actor{mallory, maker}, CodeWrongSigner},
			{[]actor{spare, mallory}, CodeWrongSigner},
			{[]actor{mallory}, CodeWrongSigner},
			{[]actor{spare, maker, mallory}, CodeWrongSigner},
		}},
		{typ: TypeRegisterDevice, name: "RegisterDevice without a maker", msg: func(w *world) *Tx {
			tx := w.msg(TypeRegisterDevice)
			tx.Maker = common.Address{}
			return tx
		}, cases: []signerCase{
			{[]actor{spare}, ok},
			{[]actor{maker}, CodeWrongSigner},
			{[]actor{spare, maker}, CodeWrongSigner},
			{[]actor{mallory}, CodeWrongSigner},
		}},
		{typ: TypeRegisterDevice, name: "RegisterDevice naming itself as maker", msg: func(w *world) *Tx {
			tx := w.msg(TypeRegisterDevice)
			tx.Maker = spare.addr
			return tx
		}, cases: []signerCase{
			{[]actor{spare}, ok},
			{[]actor{maker}, CodeWrongSigner},
		}},
		{typ: TypePairDevice, cases: []signerCase{
			{[]actor{alice, connector}, ok},
			{[]actor{connector, alice}, ok},
			{[]actor{alice}, CodeMissingSignature},
			{[]actor{connector}, CodeNotOwner}, // docs/ledger.md rule 5: a missing vehicle owner is not_owner
			{[]actor{mallory, connector}, CodeNotOwner},
			{[]actor{bob, connector}, CodeNotOwner},
			{[]actor{alice, mallory}, CodeWrongSigner},
			{[]actor{alice, dongle}, CodeWrongSigner},
			{[]actor{alice, connector, mallory}, CodeWrongSigner},
		}},
		{typ: TypeUnpairDevice, cases: []signerCase{
			{[]actor{alice}, ok},
			{[]actor{dongle}, ok},
			{[]actor{mallory}, CodeWrongSigner},
			{[]actor{connector}, CodeWrongSigner},
			{[]actor{alice, dongle}, ok},
			{[]actor{alice, mallory}, CodeWrongSigner},
		}},
		{typ: TypeTransferVehicle, cases: []signerCase{
			{[]actor{alice}, ok},
			{[]actor{bob}, CodeNotOwner},
			{[]actor{mallory}, CodeNotOwner},
			{[]actor{dongle}, CodeNotOwner},
			{[]actor{alice, bob}, CodeWrongSigner},
		}},
		{typ: TypeBurnVehicle, cases: []signerCase{
			{[]actor{alice}, ok},
			{[]actor{mallory}, CodeNotOwner},
			{[]actor{dongle}, CodeNotOwner},
			{[]actor{alice, dongle}, CodeWrongSigner},
		}},
		{typ: TypeRegisterApp, cases: []signerCase{
			{[]actor{dev, fleet}, ok},
			{[]actor{fleet, dev}, ok},
			{[]actor{dev}, CodeMissingSignature},
			{[]actor{fleet}, CodeMissingSignature},
			{[]actor{mallory, fleet}, CodeWrongSigner},
			{[]actor{dev, mallory}, CodeWrongSigner},
			{[]actor{dev, fleet, mallory}, CodeWrongSigner},
		}},
		{typ: TypeRegisterApp, name: "RegisterApp owned by its own key", msg: func(w *world) *Tx {
			tx := w.msg(TypeRegisterApp)
			tx.Owner = fleet.addr
			return tx
		}, cases: []signerCase{
			{[]actor{fleet}, ok},
			{[]actor{dev}, CodeWrongSigner},
		}},
		{typ: TypeUpdateApp, cases: []signerCase{
			{[]actor{dev}, ok},
			{[]actor{insurer}, CodeNotOwner},
			{[]actor{mallory}, CodeNotOwner},
			{[]actor{dev, insurer}, CodeWrongSigner},
		}},
		{typ: TypeGrant, cases: []signerCase{
			{[]actor{alice}, ok},
			{[]actor{mallory}, CodeNotOwner},
			{[]actor{insurer}, CodeNotOwner},
			{[]actor{dev}, CodeNotOwner},
			{[]actor{dongle}, CodeNotOwner},
			{[]actor{alice, insurer}, CodeWrongSigner},
		}},
		{typ: TypeRevoke, cases: []signerCase{
			{[]actor{alice}, ok},
			{[]actor{insurer}, CodeNotOwner},
			{[]actor{mallory}, CodeNotOwner},
		}},
		{typ: TypeSetRetention, cases: []signerCase{
			{[]actor{alice}, ok},
			{[]actor{bob}, CodeNotOwner},
			{[]actor{insurer}, CodeNotOwner},
			{[]actor{dongle}, CodeNotOwner},
			{[]actor{alice, dongle}, CodeWrongSigner},
		}},
		{typ: TypeEraseData, cases: []signerCase{
			{[]actor{alice}, ok},
			{[]actor{bob}, CodeNeverOwned},
			{[]actor{insurer}, CodeNeverOwned},
			{[]actor{dongle}, CodeNeverOwned},
			{[]actor{alice, bob}, CodeWrongSigner},
		}},
		{typ: TypeRenounce, cases: []signerCase{
			{[]actor{insurer}, ok},
			{[]actor{alice}, CodeWrongSigner},
			{[]actor{dev}, CodeWrongSigner},
			{[]actor{mallory}, CodeWrongSigner},
			{[]actor{insurer, alice}, CodeWrongSigner},
		}},
	}
}

func (r authRow) title() string {
	if r.name != "" {
		return r.name
	}
	return r.typ.String()
}

func (r authRow) message(w *world) *Tx {
	if r.msg != nil {
		return r.msg(w)
	}
	return w.msg(r.typ)
}

func TestAuthorizationMatrix(t *testing.T) {
	for _, r := range authMatrix() {
		for _, c := range r.cases {
			outcome := "accepted"
			if c.want != "" {
				outcome = "refused as " + string(c.want)
			}
			t.Run(fmt.Sprintf("%s signed by %s is %s", r.title(), names(c.signers), outcome), func(t *testing.T) {
				w := newFixture(t)
				w.expect(w.sign(r.message(w), c.signers...), c.want)
			})
		}
	}
}

func TestNonces(t *testing.T) {
	for _, r := range authMatrix() {
		right := r.cases[0].signers
		t.Run(r.title()+" submitted twice is refused as nonce_used", func(t *testing.T) {
			w := newFixture(t)
			tx := w.sign(r.message(w), right...)
			w.mustApply(tx)
			w.expect(tx, CodeNonceUsed)
		})
		for _, s := range right {
			t.Run(fmt.Sprintf("%s reusing a nonce %s spent elsewhere is refused as nonce_used", r.title(), s.name), func(t *testing.T) {
				w := newFixture(t)
				tx := r.message(w)
				other := &Tx{Type: TypeRegisterVehicle, Owner: s.addr, Make: "Other", Model: "Spent", Year: 2020, Nonce: tx.Nonce}
				w.mustApply(w.sign(other, s))
				w.expect(w.sign(tx, right...), CodeNonceUsed)
			})
		}
	}
	registration := func(w *world, owner actor, nonce *uint256.Int) *Tx {
		tx := &Tx{Type: TypeRegisterVehicle, Owner: owner.addr, Make: "Fiat", Model: "500e", Year: 2024}
		tx.Nonce = *nonce
		tx.Deadline.SetUint64(uint64(w.now/1000 + 60))
		return sign(t, tx, owner)
	}
	t.Run("a nonce is per signer: bob may use the nonce alice used", func(t *testing.T) {
		w := newWorld(t)
		n := uint256.NewInt(42)
		w.mustApply(registration(w, alice, n))
		w.mustApply(registration(w, bob, n))
	})
	t.Run("nonces are unordered: a lower nonce after a higher one is accepted", func(t *testing.T) {
		w := newWorld(t)
		w.mustApply(registration(w, alice, uint256.NewInt(10)))
		w.mustApply(registration(w, alice, uint256.NewInt(5)))
		w.expect(registration(w, alice, uint256.NewInt(10)), CodeNonceUsed)
	})
	t.Run("zero and 2^256-1 are nonces like any other", func(t *testing.T) {
		w := newWorld(t)
		w.mustApply(registration(w, alice, uint256.NewInt(0)))
		w.mustApply(registration(w, alice, new(uint256.Int).SetAllOne()))
		w.expect(registration(w, alice, uint256.NewInt(0)), CodeNonceUsed)
		w.expect(registration(w, alice, new(uint256.Int).SetAllOne()), CodeNonceUsed)
	})
	t.Run("a refused transaction does not spend its nonce", func(t *testing.T) {
		w := newWorld(t)
		bad := registration(w, alice, uint256.NewInt(7))
		bad.Make = ""
		w.expect(sign(t, bad, alice), CodeInvalidField)
		w.mustApply(registration(w, alice, uint256.NewInt(7)))
	})
	t.Run("PairDevice spends the nonce of both signers", func(t *testing.T) {
		w := newFixture(t)
		pair := w.valid(TypePairDevice)
		w.mustApply(pair)
		w.expect(registration(w, alice, &pair.Nonce), CodeNonceUsed)
		w.expect(registration(w, connector, &pair.Nonce), CodeNonceUsed)
	})
	t.Run("a transaction refused as nonce_used for its second signer spends nothing", func(t *testing.T) {
		w := newFixture(t)
		tx := w.msg(TypePairDevice)
		w.mustApply(registration(w, connector, &tx.Nonce))
		w.expect(w.sign(tx, alice, connector), CodeNonceUsed)
		w.mustApply(registration(w, alice, &tx.Nonce))
	})
}

func TestDeadlines(t *testing.T) {
	for _, r := range authMatrix() {
		right := r.cases[0].signers
		for _, c := range []struct {
			name  string
			ahead int64 // deadline minus the accept second
			want  Code
		}{
			{"a second past its deadline is refused as expired", -1, CodeExpired},
			{"a day past its deadline is refused as expired", -24 * 3600, CodeExpired},
			{"with its deadline at the accept second is accepted", 0, ""},
			{"with its deadline exactly 24 h ahead is accepted", MaxDeadlineAhead, ""},
			{"with its deadline 24 h and a second ahead is refused as deadline_too_far", MaxDeadlineAhead + 1, CodeDeadlineTooFar},
		} {
			t.Run(r.title()+" "+c.name, func(t *testing.T) {
				w := newFixture(t)
				tx := r.message(w)
				tx.Deadline.SetUint64(uint64(w.now/1000 + c.ahead))
				w.expect(w.sign(tx, right...), c.want)
			})
		}
	}
	t.Run("the milliseconds of the accept time do not expire a deadline", func(t *testing.T) {
		w := newWorld(t)
		w.now = 1_800_000_000_999
		tx := &Tx{Type: TypeRegisterVehicle, Owner: alice.addr, Make: "Kia", Model: "EV6", Year: 2022}
		tx.Deadline.SetUint64(1_800_000_000)
		w.expect(w.sign(tx, alice), "")
		w.now++
		tx2 := &Tx{Type: TypeRegisterVehicle, Owner: alice.addr, Make: "Kia", Model: "EV9", Year: 2024}
		tx2.Deadline.SetUint64(1_800_000_000)
		w.expect(w.sign(tx2, alice), CodeExpired)
	})
	t.Run("a deadline beyond 64 bits is refused as deadline_too_far", func(t *testing.T) {
		w := newWorld(t)
		tx := &Tx{Type: TypeRegisterVehicle, Owner: alice.addr, Make: "Kia", Model: "EV6", Year: 2022}
		tx.Deadline.SetAllOne()
		w.expect(w.sign(tx, alice), CodeDeadlineTooFar)
	})
	t.Run("an entry re-stamped after its deadline is refused on replay", func(t *testing.T) {
		w := newWorld(t)
		tx := w.sign(&Tx{Type: TypeRegisterVehicle, Owner: alice.addr, Make: "Kia", Model: "EV6", Year: 2022}, alice)
		late := int64(tx.Deadline.Uint64()+1) * 1000
		signers, err := testDomain.Signers(tx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = NewState().Apply(&Entry{AcceptTime: late, Tx: tx}, signers, 0)
		checkCode(t, err, CodeExpired)
	})
}

// jsonEdit decodes the submission JSON of tx, lets edit change the top level and the message, and
// encodes it again.
func jsonEdit(t *testing.T, tx *Tx, edit func(top, msg map[string]json.RawMessage)) []byte {
	t.Helper()
	b, err := tx.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var top, msg map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(top["message"], &msg); err != nil {
		t.Fatal(err)
	}
	original := top["message"]
	edit(top, msg)
	if bytes.Equal(top["message"], original) {
		top["message"], _ = json.Marshal(msg)
	}
	out, err := json.Marshal(top)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// badChecksum changes the case of one letter of a checksummed address so that it stays mixed case.
func badChecksum(t *testing.T, a common.Address) string {
	t.Helper()
	s := []byte(a.Hex())
	for i := 2; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'f' {
			s[i] = c - 'a' + 'A'
		} else if c >= 'A' && c <= 'F' {
			s[i] = c - 'A' + 'a'
		} else {
			continue
		}
		body := string(s[2:])
		if strings.ToLower(body) != body && strings.ToUpper(body) != body {
			return string(s)
		}
		s[i] = c
	}
	t.Fatalf("cannot break the checksum of %s", a.Hex())
	return ""
}

func quote(s string) json.RawMessage { b, _ := json.Marshal(s); return b }

func TestDecodeTxJSONEveryType(t *testing.T) {
	for _, typ := range TxTypes() {
		tx := sampleTx(t, typ)
		t.Run(typ.String()+" round-trips through MarshalJSON", func(t *testing.T) {
			b, err := tx.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			back, err := DecodeTxJSON(b)
			if err != nil {
				t.Fatal(err)
			}
			if !sameTx(back, tx) {
				t.Fatalf("got %+v\nwant %+v", back, tx)
			}
			var viaStd Tx
			if err := json.Unmarshal(b, &viaStd); err != nil || !sameTx(&viaStd, tx) {
				t.Fatalf("json.Unmarshal: %v", err)
			}
		})
		type badCase struct {
			name string
			edit func(top, msg map[string]json.RawMessage)
			want Code
		}
		var cases []badCase
		for _, f := range schemas[typ].fields {
			cases = append(cases,
				badCase{"without " + f.name, func(_, msg map[string]json.RawMessage) { delete(msg, f.name) }, CodeMalformed},
				badCase{"with " + f.name + " true", func(_, msg map[string]json.RawMessage) { msg[f.name] = json.RawMessage("true") }, CodeMalformed},
				badCase{"with " + f.name + " null", func(_, msg map[string]json.RawMessage) { msg[f.name] = json.RawMessage("null") }, CodeMalformed},
				badCase{"with " + f.name + " an object", func(_, msg map[string]json.RawMessage) { msg[f.name] = json.RawMessage(`{}`) }, CodeMalformed},
			)
			switch f.kind {
			case kindAddress:
				cases = append(cases,
					badCase{"with a bad checksum on " + f.name, func(_, msg map[string]json.RawMessage) {
						msg[f.name] = quote(badChecksum(t, *tx.address(f.id)))
					}, CodeMalformed},
					badCase{"with a 19-byte " + f.name, func(_, msg map[string]json.RawMessage) {
						msg[f.name] = quote("0x" + strings.Repeat("ab", 19))
					}, CodeMalformed},
					badCase{"with " + f.name + " missing its 0x", func(_, msg map[string]json.RawMessage) {
						msg[f.name] = quote(strings.Repeat("ab", 20))
					}, CodeMalformed},
				)
			case kindString:
				cases = append(cases, badCase{"with " + f.name + " a number", func(_, msg map[string]json.RawMessage) {
					msg[f.name] = json.RawMessage("5")
				}, CodeMalformed})
			case kindStringArray:
				cases = append(cases,
					badCase{"with " + f.name + " a string", func(_, msg map[string]json.RawMessage) { msg[f.name] = quote("signals") }, CodeMalformed},
					badCase{"with a number in " + f.name, func(_, msg map[string]json.RawMessage) { msg[f.name] = json.RawMessage(`["signals",1]`) }, CodeMalformed},
					badCase{"with a null in " + f.name, func(_, msg map[string]json.RawMessage) { msg[f.name] = json.RawMessage(`[null]`) }, CodeMalformed},
				)
			case kindUint256, kindUint16:
				for _, v := range []string{`"-1"`, `-1`, `1.5`, `"1.5"`, `1e3`, `"01"`, `""`, `"0x"`, `"0xg"`, `" 1"`, `"+1"`,
					`"115792089237316195423570985008687907853269984665640564039457584007913129639936"`} {
					cases = append(cases, badCase{"with " + f.name + " " + v, func(_, msg map[string]json.RawMessage) {
						msg[f.name] = json.RawMessage(v)
					}, CodeMalformed})
				}
			}
		}
		sig := func(s string) func(top, _ map[string]json.RawMessage) {
			return func(top, _ map[string]json.RawMessage) { top["signatures"] = json.RawMessage(s) }
		}
		good := `"0x` + fmt.Sprintf("%x", tx.Signatures[0][:]) + `"`
		cases = append(cases,
			badCase{"with an unknown message field", func(_, msg map[string]json.RawMessage) { msg["chainId"] = quote("1") }, CodeMalformed},
			badCase{"with a message field in another case", func(_, msg map[string]json.RawMessage) {
				msg["Nonce"] = msg["nonce"]
				delete(msg, "nonce")
			}, CodeMalformed},
			badCase{"with an unknown top-level field", func(top, _ map[string]json.RawMessage) { top["domain"] = json.RawMessage(`{}`) }, CodeMalformed},
			badCase{"with an unknown type", func(top, _ map[string]json.RawMessage) { top["type"] = quote(typ.String() + "V2") }, CodeMalformed},
			badCase{"with the type in lower case", func(top, _ map[string]json.RawMessage) { top["type"] = quote(strings.ToLower(typ.String())) }, CodeMalformed},
			badCase{"without a type", func(top, _ map[string]json.RawMessage) { delete(top, "type") }, CodeMalformed},
			badCase{"without a message", func(top, _ map[string]json.RawMessage) { delete(top, "message") }, CodeMalformed},
			badCase{"with an array as message", func(top, _ map[string]json.RawMessage) { top["message"] = json.RawMessage(`[]`) }, CodeMalformed},
			badCase{"with a null message", func(top, _ map[string]json.RawMessage) { top["message"] = json.RawMessage(`null`) }, CodeMalformed},
			badCase{"without signatures", func(top, _ map[string]json.RawMessage) { delete(top, "signatures") }, CodeMissingSignature},
			badCase{"with an empty signature list", sig(`[]`), CodeMissingSignature},
			badCase{"with four signatures", sig("[" + strings.Repeat(good+",", 3) + good + "]"), CodeMalformed},
			badCase{"with a signature that is not hex", sig(`["0x` + strings.Repeat("zz", 65) + `"]`), CodeBadSignature},
			badCase{"with a 64-byte signature", sig(`["0x` + strings.Repeat("11", 64) + `"]`), CodeBadSignature},
			badCase{"with a 66-byte signature", sig(`["0x` + strings.Repeat("11", 66) + `"]`), CodeBadSignature},
			badCase{"with a signature missing its 0x", sig(`["` + strings.Repeat("11", 65) + `"]`), CodeBadSignature},
			badCase{"with a signature as a number", sig(`[1]`), CodeMalformed},
		)
		for _, c := range cases {
			t.Run(typ.String()+" "+c.name+" is refused as "+string(c.want), func(t *testing.T) {
				b := jsonEdit(t, tx, c.edit)
				got, err := DecodeTxJSON(b)
				if err == nil {
					t.Fatalf("accepted %s as %+v", b, got)
				}
				checkCode(t, err, c.want)
			})
		}
		t.Run(typ.String()+" with a high-s signature decodes but its signer is a bad_signature", func(t *testing.T) {
			b := jsonEdit(t, tx, func(top, _ map[string]json.RawMessage) {
				hs := highS(tx.Signatures[0])
				top["signatures"] = json.RawMessage(`["0x` + fmt.Sprintf("%x", hs[:]) + `"]`)
			})
			got, err := DecodeTxJSON(b)
			if err != nil {
				t.Fatal(err)
			}
			_, err = testDomain.Signers(got)
			checkCode(t, err, CodeBadSignature)
		})
		t.Run(typ.String()+" signed twice by the same key is malformed", func(t *testing.T) {
			dup := *tx
			dup.Signatures = []Signature{tx.Signatures[0], tx.Signatures[0]}
			b, _ := dup.MarshalJSON()
			got, err := DecodeTxJSON(b)
			if err != nil {
				t.Fatal(err)
			}
			_, err = testDomain.Signers(got)
			checkCode(t, err, CodeMalformed)
		})
	}
}

func TestDecodeTxJSONLenientForms(t *testing.T) {
	tx := sampleTx(t, TypeRegisterVehicle)
	for _, c := range []struct {
		name string
		edit func(top, msg map[string]json.RawMessage)
		want func(tx *Tx)
	}{
		{"integers as JSON numbers", func(_, msg map[string]json.RawMessage) {
			msg["year"], msg["nonce"] = json.RawMessage("2023"), json.RawMessage("1001")
		}, nil},
		{"integers as 0x-hex strings", func(_, msg map[string]json.RawMessage) {
			msg["year"], msg["nonce"] = quote("0x7e7"), quote("0x3e9")
		}, nil},
		{"zero as 0x0", func(_, msg map[string]json.RawMessage) { msg["nonce"] = quote("0x0") }, func(tx *Tx) { tx.Nonce.Clear() }},
		{"an all-lower-case address", func(_, msg map[string]json.RawMessage) {
			msg["owner"] = quote(strings.ToLower(alice.addr.Hex()))
		}, nil},
		{"an all-upper-case address", func(_, msg map[string]json.RawMessage) {
			msg["owner"] = quote("0x" + strings.ToUpper(alice.addr.Hex()[2:]))
		}, nil},
		{"a signature v of 0 or 1", func(top, _ map[string]json.RawMessage) {
			s := tx.Signatures[0]
			s[64] -= 27
			top["signatures"] = json.RawMessage(`["0x` + fmt.Sprintf("%x", s[:]) + `"]`)
		}, nil},
		{"a signature in upper-case hex", func(top, _ map[string]json.RawMessage) {
			top["signatures"] = json.RawMessage(`["0X` + fmt.Sprintf("%X", tx.Signatures[0][:]) + `"]`)
		}, nil},
	} {
		t.Run("DecodeTxJSON accepts "+c.name, func(t *testing.T) {
			got, err := DecodeTxJSON(jsonEdit(t, tx, c.edit))
			if err != nil {
				t.Fatal(err)
			}
			want := *tx
			if c.want != nil {
				c.want(&want)
			}
			if !sameTx(got, &want) {
				t.Fatalf("got %+v\nwant %+v", got, &want)
			}
		})
	}
	good, _ := tx.MarshalJSON()
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"nothing", nil},
		{"a JSON array", []byte(`[]`)},
		{"null", []byte(`null`)},
		{"trailing data", append(append([]byte{}, good...), `{}`...)},
		{"a truncated document", good[:len(good)-1]},
		{"a document over MaxTxJSON", append(append([]byte{}, good...), strings.Repeat(" ", MaxTxJSON)...)},
		{"a 0X-prefixed address", jsonEdit(t, tx, func(_, msg map[string]json.RawMessage) {
			msg["owner"] = quote("0X" + alice.addr.Hex()[2:])
		})},
		{"a year above 65535", jsonEdit(t, tx, func(_, msg map[string]json.RawMessage) { msg["year"] = quote("65536") })},
	} {
		t.Run("DecodeTxJSON refuses "+c.name+" as malformed", func(t *testing.T) {
			_, err := DecodeTxJSON(c.data)
			checkCode(t, err, CodeMalformed)
		})
	}
}

// ruleCase is a transaction against the fixture and the code it must get.
type ruleCase struct {
	name  string
	setup func(w *world)
	tx    func(w *world) *Tx
	want  Code
}

func runRules(t *testing.T, cases []ruleCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newFixture(t)
			if c.setup != nil {
				c.setup(w)
			}
			w.expect(c.tx(w), c.want)
		})
	}
}

// edited returns a builder of the fixture-valid typ with edit applied, signed by its right signers.
func edited(typ TxType, edit func(tx *Tx)) func(w *world) *Tx {
	return func(w *world) *Tx {
		tx := w.msg(typ)
		edit(tx)
		return w.sign(tx, rightSigners(typ)...)
	}
}

// vehicle2 registers vehicle 2, owned by bob.
func vehicle2(w *world) {
	w.mustApply(w.sign(&Tx{Type: TypeRegisterVehicle, Owner: bob.addr, Make: "Renault", Model: "Zoe", Year: 2020}, bob))
}

func vehicleTypes() []TxType {
	return []TxType{TypePairDevice, TypeUnpairDevice, TypeTransferVehicle, TypeBurnVehicle, TypeGrant, TypeRevoke, TypeRenounce}
}

func TestStateRules(t *testing.T) {
	var cases []ruleCase
	add := func(cs ...ruleCase) { cases = append(cases, cs...) }

	// Pairing.
	add(
		ruleCase{name: "pairing a device paired to another vehicle is refused as already_paired", setup: vehicle2,
			tx: func(w *world) *Tx {
				tx := &Tx{Type: TypePairDevice, Device: dongle.addr}
				tx.VehicleID.SetUint64(2)
				return w.sign(tx, bob, dongle)
			}, want: CodeAlreadyPaired},
		ruleCase{name: "pairing a device to the vehicle it is paired to is refused as already_paired",
			tx: func(w *world) *Tx {
				tx := w.msg(TypePairDevice)
				tx.Device = dongle.addr
				return w.sign(tx, alice, dongle)
			}, want: CodeAlreadyPaired},
		ruleCase{name: "pairing a second hardware device is refused as kind_taken",
			setup: func(w *world) {
				w.mustApply(w.sign(&Tx{Type: TypeRegisterDevice, Device: spare.addr, Kind: KindHardware}, spare))
			},
			tx: func(w *world) *Tx {
				tx := w.msg(TypePairDevice)
				tx.Device = spare.addr
				return w.sign(tx, alice, spare)
			}, want: CodeKindTaken},
		ruleCase{name: "a vehicle takes one software device beside its hardware one",
			tx: func(w *world) *Tx { return w.valid(TypePairDevice) }},
		ruleCase{name: "a kind freed by unpairing can be taken again",
			setup: func(w *world) {
				w.mustApply(w.valid(TypeUnpairDevice))
				w.mustApply(w.sign(&Tx{Type: TypeRegisterDevice, Device: spare.addr, Kind: KindHardware}, spare))
			},
			tx: func(w *world) *Tx {
				tx := w.msg(TypePairDevice)
				tx.Device = spare.addr
				return w.sign(tx, alice, spare)
			}},
		ruleCase{name: "an unpaired device can be paired again", setup: func(w *world) { w.mustApply(w.valid(TypeUnpairDevice)) },
			tx: func(w *world) *Tx {
				tx := w.msg(TypePairDevice)
				tx.Device = dongle.addr
				return w.sign(tx, alice, dongle)
			}},
		ruleCase{name: "unpairing a device that is not paired is refused as not_paired",
			tx: edited(TypeUnpairDevice, func(tx *Tx) { tx.Device = connector.addr }), want: CodeNotPaired},
		ruleCase{name: "unpairing a device from a vehicle it is not paired to is refused as not_paired", setup: vehicle2,
			tx: func(w *world) *Tx {
				tx := w.msg(TypeUnpairDevice)
				tx.VehicleID.SetUint64(2)
				return w.sign(tx, bob)
			}, want: CodeNotPaired},
		ruleCase{name: "unpairing twice is refused as not_paired", setup: func(w *world) { w.mustApply(w.valid(TypeUnpairDevice)) },
			tx: func(w *world) *Tx { return w.valid(TypeUnpairDevice) }, want: CodeNotPaired},
		ruleCase{name: "a device unpairing itself from a vehicle it is not paired to is refused as not_paired", setup: vehicle2,
			tx: func(w *world) *Tx {
				tx := w.msg(TypeUnpairDevice)
				tx.VehicleID.SetUint64(2)
				return w.sign(tx, dongle)
			}, want: CodeNotPaired},
		ruleCase{name: "a device cannot unpair another device", setup: func(w *world) { w.mustApply(w.valid(TypePairDevice)) },
			tx: func(w *world) *Tx { return w.sign(w.msg(TypeUnpairDevice), connector) }, want: CodeWrongSigner},
		ruleCase{name: "pairing an unregistered device is refused as unknown_device",
			tx: func(w *world) *Tx {
				tx := w.msg(TypePairDevice)
				tx.Device = spare.addr
				return w.sign(tx, alice, spare)
			}, want: CodeUnknownDevice},
		ruleCase{name: "unpairing an unregistered device is refused as unknown_device",
			tx: edited(TypeUnpairDevice, func(tx *Tx) { tx.Device = spare.addr }), want: CodeUnknownDevice},
	)

	// Unknown vehicles and burned ones, for every transaction naming a vehicle.
	for _, typ := range vehicleTypes() {
		for _, id := range []struct {
			name string
			set  func(u *uint256.Int)
		}{
			{"2 (not registered)", func(u *uint256.Int) { u.SetUint64(2) }},
			{"0", func(u *uint256.Int) { u.Clear() }},
			{"2^64+1", func(u *uint256.Int) { u.Lsh(uint256.NewInt(1), 64).AddUint64(u, 1) }},
			{"2^256-1", func(u *uint256.Int) { u.SetAllOne() }},
		} {
			add(ruleCase{name: fmt.Sprintf("%s of vehicle %s is refused as unknown_vehicle", typ, id.name),
				tx: edited(typ, func(tx *Tx) { id.set(&tx.VehicleID) }), want: CodeUnknownVehicle})
		}
		add(ruleCase{name: typ.String() + " of a burned vehicle is refused as vehicle_burned",
			setup: func(w *world) { w.mustApply(w.valid(TypeBurnVehicle)) },
			tx: func(w *world) *Tx {
				tx := w.msg(typ)
				if typ == TypeUnpairDevice || typ == TypePairDevice {
					tx.Device = dongle.addr
				}
				return w.sign(tx, rightSigners(typ)...)
			}, want: CodeVehicleBurned})
	}

	// Apps and grants.
	add(
		ruleCase{name: "a Grant to an unregistered app is refused as unknown_app",
			tx: edited(TypeGrant, func(tx *Tx) { tx.App = fleet.addr }), want: CodeUnknownApp},
		ruleCase{name: "a Revoke of an unregistered app is refused as unknown_app",
			tx: edited(TypeRevoke, func(tx *Tx) { tx.App = fleet.addr }), want: CodeUnknownApp},
		ruleCase{name: "a Renounce by an unregistered app is refused as unknown_app",
			tx: func(w *world) *Tx {
				tx := w.msg(TypeRenounce)
				tx.App = fleet.addr
				return w.sign(tx, fleet)
			}, want: CodeUnknownApp},
		ruleCase{name: "an UpdateApp of an unregistered app is refused as unknown_app",
			tx: edited(TypeUpdateApp, func(tx *Tx) { tx.App = fleet.addr }), want: CodeUnknownApp},
		ruleCase{name: "registering a registered app again is refused as already_registered",
			tx: func(w *world) *Tx {
				tx := w.msg(TypeRegisterApp)
				tx.App = insurer.addr
				return w.sign(tx, dev, insurer)
			}, want: CodeAlreadyRegistered},
		ruleCase{name: "registering a registered device again is refused as already_registered",
			tx: func(w *world) *Tx {
				return w.sign(&Tx{Type: TypeRegisterDevice, Device: dongle.addr, Kind: KindSoftware}, dongle)
			}, want: CodeAlreadyRegistered},
		ruleCase{name: "a Revoke without a grant is refused as no_grant", setup: func(w *world) { w.mustApply(w.valid(TypeRevoke)) },
			tx: func(w *world) *Tx { return w.valid(TypeRevoke) }, want: CodeNoGrant},
		ruleCase{name: "a Renounce without a grant is refused as no_grant", setup: func(w *world) { w.mustApply(w.valid(TypeRenounce)) },
			tx: func(w *world) *Tx { return w.valid(TypeRenounce) }, want: CodeNoGrant},
		ruleCase{name: "a Revoke on a vehicle the app holds no grant on is refused as no_grant",
			setup: func(w *world) {
				w.mustApply(w.sign(&Tx{Type: TypeRegisterVehicle, Owner: alice.addr, Make: "Mini", Model: "Cooper SE", Year: 2021}, alice))
			},
			tx: edited(TypeRevoke, func(tx *Tx) { tx.VehicleID.SetUint64(2) }), want: CodeNoGrant},
		ruleCase{name: "a new Grant replaces the app's grant", tx: func(w *world) *Tx { return w.valid(TypeGrant) }},
		ruleCase{name: "an expired grant can still be revoked",
			setup: func(w *world) { w.advance(31 * 24 * time.Hour) },
			tx:    func(w *world) *Tx { return w.valid(TypeRevoke) }},
	)
	for _, perms := range [][]string{{"telemetry"}, {PermSignals, PermSignals}, {PermSignals, PermLocation, PermSignals}, {}, {""}, {"Signals"}, {"location:precise"}} {
		add(ruleCase{name: fmt.Sprintf("a Grant of %q is refused as unknown_permission", perms),
			tx: edited(TypeGrant, func(tx *Tx) { tx.Permissions = perms }), want: CodeUnknownPermission})
	}
	// Per-signal permissions: a catalogue name that `signals` guards, spelled exactly; never a location
	// signal or the VIN (their own permissions guard them), never an unknown or misspelt name.
	for _, perms := range [][]string{{"signals:speedometer"}, {"signals:"}, {"signals:Speed"}, {"signals:speed "},
		{"signals:currentLocationCoordinates"}, {"signals:vehicleIdentificationVIN"}, {"signals:speed", "signals:speed"},
		{"signal:speed"}, {"signals::speed"}} {
		add(ruleCase{name: fmt.Sprintf("a Grant of %q is refused as unknown_permission", perms),
			tx: edited(TypeGrant, func(tx *Tx) { tx.Permissions = perms }), want: CodeUnknownPermission})
	}
	for _, perms := range [][]string{{"signals:powertrainTransmissionTravelledDistance"},
		{"signals:speed", PermLocationApproximate}, {PermSignals, "signals:speed"}} {
		add(ruleCase{name: fmt.Sprintf("a Grant of %q is accepted", perms),
			tx: edited(TypeGrant, func(tx *Tx) { tx.Permissions = perms })})
	}
	add(ruleCase{name: "a Grant of every permission is accepted",
		tx: edited(TypeGrant, func(tx *Tx) { tx.Permissions = slices.Clone(Permissions) })})

	// Field rules.
	long := func(n int, r string) string { return strings.Repeat(r, n) }
	for _, c := range []struct {
		name string
		edit func(tx *Tx)
		want Code
	}{
		{"an empty make", func(tx *Tx) { tx.Make = "" }, CodeInvalidField},
		{"an empty model", func(tx *Tx) { tx.Model = "" }, CodeInvalidField},
		{"a make of 65 characters", func(tx *Tx) { tx.Make = long(65, "a") }, CodeInvalidField},
		{"a make of 64 two-byte characters", func(tx *Tx) { tx.Make = long(64, "é") }, ""},
		{"a model with a leading space", func(tx *Tx) { tx.Model = " ID.3" }, CodeInvalidField},
		{"a model with a trailing newline", func(tx *Tx) { tx.Model = "ID.3\n" }, CodeInvalidField},
		{"a make with a control character", func(tx *Tx) { tx.Make = "Volks\x07wagen" }, CodeInvalidField},
		{"a make that is not UTF-8", func(tx *Tx) { tx.Make = "Volks\xffwagen" }, CodeInvalidField},
		{"the year 1800", func(tx *Tx) { tx.Year = 1800 }, CodeInvalidField},
		{"the year 1885", func(tx *Tx) { tx.Year = 1885 }, CodeInvalidField},
		{"the year 1886", func(tx *Tx) { tx.Year = 1886 }, ""},
		{"a year two ahead of the accept time", func(tx *Tx) { tx.Year = 2028 }, ""},
		{"a year three ahead of the accept time", func(tx *Tx) { tx.Year = 2029 }, CodeInvalidField},
		{"the year 0", func(tx *Tx) { tx.Year = 0 }, CodeInvalidField},
		{"the zero owner", func(tx *Tx) { tx.Owner = common.Address{} }, CodeInvalidField},
	} {
		outcome := "accepted"
		if c.want != "" {
			outcome = "refused as " + string(c.want)
		}
		add(ruleCase{name: "a RegisterVehicle with " + c.name + " is " + outcome, tx: edited(TypeRegisterVehicle, c.edit), want: c.want})
	}
	for _, kind := range []string{"", "Hardware", "firmware", "hardware "} {
		add(ruleCase{name: fmt.Sprintf("a RegisterDevice of kind %q is refused as invalid_field", kind),
			tx: edited(TypeRegisterDevice, func(tx *Tx) { tx.Kind = kind }), want: CodeInvalidField})
	}
	add(ruleCase{name: "a RegisterDevice of a software device is accepted",
		tx: edited(TypeRegisterDevice, func(tx *Tx) { tx.Kind = KindSoftware })})
	add(ruleCase{name: "a RegisterDevice of the zero address is refused as invalid_field",
		tx: func(w *world) *Tx {
			tx := w.msg(TypeRegisterDevice)
			tx.Device = common.Address{}
			return w.sign(tx, maker)
		}, want: CodeInvalidField})

	eleven := make([]string, 11)
	for i := range eleven {
		eleven[i] = fmt.Sprintf("https://fleet.example/cb/%d", i)
	}
	for _, c := range []struct {
		name string
		uris []string
		want Code
	}{
		{"no redirect URI", []string{}, ""},
		{"an http redirect to a public host", []string{"http://fleet.example/cb"}, CodeInvalidField},
		{"an http redirect to localhost", []string{"http://localhost:3000/cb"}, ""},
		{"an http redirect to 127.0.0.1", []string{"http://127.0.0.1/cb"}, ""},
		{"an http redirect to [::1]", []string{"http://[::1]:8080/cb"}, ""},
		{"an http redirect to a host named like localhost", []string{"http://localhost.fleet.example/cb"}, CodeInvalidField},
		{"a redirect with a fragment", []string{"https://fleet.example/cb#x"}, CodeInvalidField},
		{"a redirect with user info", []string{"https://user@fleet.example/cb"}, CodeInvalidField},
		{"a relative redirect", []string{"/cb"}, CodeInvalidField},
		{"a redirect without host", []string{"https:///cb"}, CodeInvalidField},
		{"an ftp redirect", []string{"ftp://fleet.example/cb"}, CodeInvalidField},
		{"a javascript redirect", []string{"javascript:alert(1)"}, CodeInvalidField},
		{"an empty redirect", []string{""}, CodeInvalidField},
		{"a redirect listed twice", []string{"https://fleet.example/cb", "https://fleet.example/cb"}, CodeInvalidField},
		{"ten redirect URIs", eleven[:10], ""},
		{"eleven redirect URIs", eleven, CodeInvalidField},
		{"a redirect URI that is not UTF-8", []string{"https://fleet.example/\xff"}, CodeInvalidField},
		{"a redirect of 512 bytes", []string{"https://fleet.example/" + long(512-22, "a")}, ""},
		{"a redirect of 513 bytes", []string{"https://fleet.example/" + long(513-22, "a")}, CodeInvalidField},
	} {
		outcome := "accepted"
		if c.want != "" {
			outcome = "refused as " + string(c.want)
		}
		add(
			ruleCase{name: "a RegisterApp with " + c.name + " is " + outcome,
				tx: edited(TypeRegisterApp, func(tx *Tx) { tx.RedirectURIs = c.uris }), want: c.want},
			ruleCase{name: "an UpdateApp with " + c.name + " is " + outcome,
				tx: edited(TypeUpdateApp, func(tx *Tx) { tx.RedirectURIs = c.uris }), want: c.want},
		)
	}
	for _, c := range []struct {
		name string
		edit func(tx *Tx)
		want Code
	}{
		{"an empty name", func(tx *Tx) { tx.Name = "" }, CodeInvalidField},
		{"a name of 65 characters", func(tx *Tx) { tx.Name = long(65, "n") }, CodeInvalidField},
		{"a name with a tab", func(tx *Tx) { tx.Name = "Fleet\tTool" }, CodeInvalidField},
	} {
		add(
			ruleCase{name: "a RegisterApp with " + c.name + " is refused as " + string(c.want), tx: edited(TypeRegisterApp, c.edit), want: c.want},
			ruleCase{name: "an UpdateApp with " + c.name + " is refused as " + string(c.want), tx: edited(TypeUpdateApp, c.edit), want: c.want},
		)
	}
	add(
		ruleCase{name: "a RegisterApp of the zero app address is refused as invalid_field",
			tx: func(w *world) *Tx {
				tx := w.msg(TypeRegisterApp)
				tx.App = common.Address{}
				return w.sign(tx, dev)
			}, want: CodeInvalidField},
		ruleCase{name: "a RegisterApp with the zero owner is refused as invalid_field",
			tx: func(w *world) *Tx {
				tx := w.msg(TypeRegisterApp)
				tx.Owner = common.Address{}
				return w.sign(tx, fleet)
			}, want: CodeInvalidField},
		ruleCase{name: "a TransferVehicle to its owner is refused as invalid_field",
			tx: edited(TypeTransferVehicle, func(tx *Tx) { tx.To = alice.addr }), want: CodeInvalidField},
		ruleCase{name: "a TransferVehicle to the zero address is refused as invalid_field",
			tx: edited(TypeTransferVehicle, func(tx *Tx) { tx.To = common.Address{} }), want: CodeInvalidField},
	)
	for _, c := range []struct {
		name string
		edit func(tx *Tx)
		want Code
	}{
		{"an empty purpose", func(tx *Tx) { tx.Purpose = "" }, CodeInvalidField},
		{"a purpose of 280 characters", func(tx *Tx) { tx.Purpose = long(280, "ü") }, ""},
		{"a purpose of 281 characters", func(tx *Tx) { tx.Purpose = long(281, "p") }, CodeInvalidField},
		{"a purpose with a trailing space", func(tx *Tx) { tx.Purpose = "quote " }, CodeInvalidField},
		{"no terms URI", func(tx *Tx) { tx.TermsURI = "" }, ""},
		{"an http terms URI", func(tx *Tx) { tx.TermsURI = "http://insurer.example/terms" }, ""},
		{"an ftp terms URI", func(tx *Tx) { tx.TermsURI = "ftp://insurer.example/terms" }, CodeInvalidField},
		{"a relative terms URI", func(tx *Tx) { tx.TermsURI = "insurer.example/terms" }, CodeInvalidField},
		{"a terms URI that is not UTF-8", func(tx *Tx) { tx.TermsURI = "https://insurer.example/\xc3" }, CodeInvalidField},
		{"a terms URI of 513 bytes", func(tx *Tx) { tx.TermsURI = "https://insurer.example/" + long(513-24, "t") }, CodeInvalidField},
		{"expiresAt at the end of 9999", func(tx *Tx) { tx.ExpiresAt.SetUint64(maxExpiresAt) }, ""},
		{"expiresAt after the year 9999", func(tx *Tx) { tx.ExpiresAt.SetUint64(maxExpiresAt + 1) }, CodeInvalidField},
		{"expiresAt of 2^256-1", func(tx *Tx) { tx.ExpiresAt.SetAllOne() }, CodeInvalidField},
		{"expiresAt of 0", func(tx *Tx) { tx.ExpiresAt.Clear() }, CodeExpired},
	} {
		outcome := "accepted"
		if c.want != "" {
			outcome = "refused as " + string(c.want)
		}
		add(ruleCase{name: "a Grant with " + c.name + " is " + outcome, tx: edited(TypeGrant, c.edit), want: c.want})
	}
	runRules(t, cases)
}

func TestResults(t *testing.T) {
	w := newFixture(t)
	for i, c := range []struct {
		tx   *Tx
		want Result
	}{
		{w.valid(TypeRegisterVehicle), Result{VehicleID: 2}},
		{w.valid(TypeRegisterVehicle), Result{VehicleID: 3}},
		{w.valid(TypeRegisterDevice), Result{Device: spare.addr.Hex()}},
		{w.valid(TypePairDevice), Result{VehicleID: 1, Device: connector.addr.Hex()}},
		{w.valid(TypeRegisterApp), Result{App: fleet.addr.Hex()}},
		{w.valid(TypeUpdateApp), Result{App: insurer.addr.Hex()}},
		{w.valid(TypeGrant), Result{VehicleID: 1, App: insurer.addr.Hex()}},
		{w.valid(TypeRevoke), Result{VehicleID: 1, App: insurer.addr.Hex()}},
		{w.valid(TypeUnpairDevice), Result{VehicleID: 1, Device: dongle.addr.Hex()}},
		{w.valid(TypeTransferVehicle), Result{VehicleID: 1}},
	} {
		t.Run(fmt.Sprintf("step %d, %s, reports what it did", i, c.tx.Type), func(t *testing.T) {
			if got := w.mustApply(c.tx); got != c.want {
				t.Fatalf("Result = %+v, want %+v", got, c.want)
			}
		})
	}
	if w.s.Size() != 6+10 || w.s.LastTime() != testStart {
		t.Fatalf("Size, LastTime = %d, %d", w.s.Size(), w.s.LastTime())
	}
}

func TestGrantExpiry(t *testing.T) {
	grantUntil := func(w *world, expiresAt int64) *Tx {
		tx := w.msg(TypeGrant)
		tx.ExpiresAt.SetUint64(uint64(expiresAt))
		return w.sign(tx, alice)
	}
	t.Run("a grant expiring at the accept second is refused as expired", func(t *testing.T) {
		w := newFixture(t)
		w.expect(grantUntil(w, w.now/1000), CodeExpired)
	})
	t.Run("a grant that expired before the accept second is refused as expired", func(t *testing.T) {
		w := newFixture(t)
		w.expect(grantUntil(w, w.now/1000-1), CodeExpired)
	})
	t.Run("the milliseconds of the accept time count as the same second", func(t *testing.T) {
		w := newFixture(t)
		w.now = (w.now/1000+5)*1000 + 999
		w.expect(grantUntil(w, w.now/1000), CodeExpired)
		w.expect(grantUntil(w, w.now/1000+1), "")
	})
	t.Run("a grant is in force up to the second before expiresAt", func(t *testing.T) {
		w := newFixture(t)
		exp := w.now/1000 + 1
		w.mustApply(grantUntil(w, exp))
		g, ok := w.s.GrantOf(1, insurer.addr)
		if !ok {
			t.Fatal("no grant")
		}
		if g.ExpiresAt != exp || !g.ActiveAt(exp-1) || g.ActiveAt(exp) || g.ActiveAt(exp+1) {
			t.Fatalf("ExpiresAt %d; ActiveAt(exp-1, exp, exp+1) = %v %v %v", g.ExpiresAt, g.ActiveAt(exp-1), g.ActiveAt(exp), g.ActiveAt(exp+1))
		}
	})
	t.Run("a new grant replaces the old one", func(t *testing.T) {
		w := newFixture(t)
		w.advance(time.Minute)
		tx := w.msg(TypeGrant)
		tx.Permissions, tx.Purpose, tx.TermsURI = []string{PermRaw}, "Audit", ""
		tx.ExpiresAt.SetUint64(uint64(w.now/1000 + 60))
		w.mustApply(w.sign(tx, alice))
		g, ok := w.s.GrantOf(1, insurer.addr)
		want := Grant{VehicleID: 1, App: insurer.addr.Hex(), Permissions: []string{PermRaw}, ExpiresAt: w.now/1000 + 60,
			Purpose: "Audit", Index: w.s.Size() - 1, GrantedAt: w.now}
		if !ok || fmt.Sprint(g) != fmt.Sprint(want) {
			t.Fatalf("GrantOf = %+v, %v\nwant %+v", g, ok, want)
		}
		if !g.Has(PermRaw) || g.Has(PermSignals) {
			t.Fatal("Has does not reflect the new permissions")
		}
		if v, _ := w.s.Vehicle(1); len(v.Grants) != 1 {
			t.Fatalf("vehicle lists %d grants, want 1", len(v.Grants))
		}
	})
	t.Run("an expired grant stays readable but not in force", func(t *testing.T) {
		w := newFixture(t)
		g, _ := w.s.GrantOf(1, insurer.addr)
		w.advance(31 * 24 * time.Hour)
		g2, ok := w.s.GrantOf(1, insurer.addr)
		if !ok || g2.ActiveAt(w.now/1000) || !g.ActiveAt(testStart/1000) {
			t.Fatalf("GrantOf after expiry = %+v, %v", g2, ok)
		}
	})
}

func TestTransferClearsGrants(t *testing.T) {
	w := newFixture(t)
	w.mustApply(w.valid(TypeTransferVehicle))
	if _, ok := w.s.GrantOf(1, insurer.addr); ok {
		t.Fatal("the insurer still holds a grant after the transfer")
	}
	v, _ := w.s.Vehicle(1)
	if v.Owner != bob.addr.Hex() || len(v.Grants) != 0 {
		t.Fatalf("vehicle after transfer: owner %s, %d grants", v.Owner, len(v.Grants))
	}
	if acc := w.s.Account(insurer.addr); len(acc.GrantsHeld) != 0 {
		t.Fatalf("the insurer's account still lists %d grants", len(acc.GrantsHeld))
	}
	if acc := w.s.Account(alice.addr); len(acc.Vehicles) != 0 || len(acc.GrantsGiven) != 0 {
		t.Fatalf("alice's account after selling: %+v", acc)
	}
	if acc := w.s.Account(bob.addr); !slices.Equal(acc.Vehicles, []uint64{1}) {
		t.Fatalf("bob's vehicles = %v, want [1]", acc.Vehicles)
	}
	for _, typ := range []TxType{TypeGrant, TypeRevoke, TypeTransferVehicle, TypeBurnVehicle, TypeUnpairDevice} {
		t.Run("the old owner's "+typ.String()+" is refused", func(t *testing.T) {
			tx := w.msg(typ)
			if typ == TypeTransferVehicle {
				tx.To = mallory.addr
			}
			want := CodeNotOwner
			if typ == TypeUnpairDevice {
				want = CodeWrongSigner
			}
			w.expect(w.sign(tx, alice), want)
		})
	}
	t.Run("the hardware device stays paired through a transfer", func(t *testing.T) {
		if d, _ := w.s.Device(dongle.addr); d.VehicleID != 1 {
			t.Fatalf("dongle paired to %d", d.VehicleID)
		}
	})
	t.Run("the new owner grants, and may sell back to the old one", func(t *testing.T) {
		w.mustApply(w.sign(w.msg(TypeGrant), bob))
		if _, ok := w.s.GrantOf(1, insurer.addr); !ok {
			t.Fatal("bob's grant is missing")
		}
		back := w.msg(TypeTransferVehicle)
		back.To = alice.addr
		w.mustApply(w.sign(back, bob))
		if _, ok := w.s.GrantOf(1, insurer.addr); ok {
			t.Fatal("the grant survived the second transfer")
		}
	})
}

func TestBurnUnpairsAndClearsGrants(t *testing.T) {
	w := newFixture(t)
	w.advance(time.Second)
	w.mustApply(w.valid(TypePairDevice))
	w.advance(time.Second)
	burnAt, burnIndex := w.now, w.s.Size()
	w.mustApply(w.valid(TypeBurnVehicle))
	v, ok := w.s.Vehicle(1)
	if !ok || !v.Burned || len(v.Devices) != 0 || len(v.Grants) != 0 {
		t.Fatalf("Vehicle(1) after burn = %+v, %v", v, ok)
	}
	for _, d := range []actor{dongle, connector} {
		t.Run(d.name+" is unpaired at the burn entry", func(t *testing.T) {
			dv, _ := w.s.Device(d.addr)
			last := dv.Pairings[len(dv.Pairings)-1]
			if dv.VehicleID != 0 || last.ToIndex != burnIndex || last.ToTime != burnAt {
				t.Fatalf("device after burn: %+v", dv)
			}
			if _, ok := w.s.PairingAt(d.addr, 1, burnAt); ok {
				t.Fatal("paired at the burn time")
			}
			if _, ok := w.s.PairingAt(d.addr, 1, burnAt-1); !ok {
				t.Fatal("not paired just before the burn")
			}
		})
	}
	if _, ok := w.s.GrantOf(1, insurer.addr); ok {
		t.Fatal("grant survived the burn")
	}
	if acc := w.s.Account(alice.addr); len(acc.Vehicles) != 0 {
		t.Fatalf("alice's account lists burned vehicles %v", acc.Vehicles)
	}
	t.Run("the freed devices pair with another vehicle", func(t *testing.T) {
		vehicle2(w)
		for _, d := range []actor{dongle, connector} {
			tx := &Tx{Type: TypePairDevice, Device: d.addr}
			tx.VehicleID.SetUint64(2)
			w.mustApply(w.sign(tx, bob, d))
		}
	})
	t.Run("burned vehicle ids are not reused", func(t *testing.T) {
		if res := w.mustApply(w.valid(TypeRegisterVehicle)); res.VehicleID != 3 {
			t.Fatalf("new vehicle id %d, want 3", res.VehicleID)
		}
	})
}

func TestPairingAt(t *testing.T) {
	w := newWorld(t)
	w.mustApply(w.sign(&Tx{Type: TypeRegisterVehicle, Owner: alice.addr, Make: "Tesla", Model: "Model Y", Year: 2024}, alice))
	w.mustApply(w.sign(&Tx{Type: TypeRegisterDevice, Device: dongle.addr, Kind: KindHardware}, dongle))
	pair := func() {
		tx := &Tx{Type: TypePairDevice, Device: dongle.addr}
		tx.VehicleID.SetUint64(1)
		w.mustApply(w.sign(tx, alice, dongle))
	}
	w.advance(10 * time.Second)
	t1 := w.now
	pair() // entry 2
	w.advance(10 * time.Second)
	t2 := w.now
	w.mustApply(w.sign(w.msg(TypeUnpairDevice), dongle)) // entry 3
	w.advance(10 * time.Second)
	t3 := w.now
	pair() // entry 4

	for _, c := range []struct {
		name    string
		vehicle uint64
		device  common.Address
		at      int64
		want    bool
		from    int64 // FromIndex of the pairing found
	}{
		{"before the first pairing", 1, dongle.addr, t1 - 1, false, 0},
		{"at the first pairing's accept time", 1, dongle.addr, t1, true, 2},
		{"inside the first interval", 1, dongle.addr, t1 + 5000, true, 2},
		{"the last millisecond of the first interval", 1, dongle.addr, t2 - 1, true, 2},
		{"at the unpairing", 1, dongle.addr, t2, false, 0},
		{"between the intervals", 1, dongle.addr, t2 + 5000, false, 0},
		{"at the second pairing", 1, dongle.addr, t3, true, 4},
		{"long after the second pairing", 1, dongle.addr, t3 + int64(365*24*time.Hour/time.Millisecond), true, 4},
		{"for another vehicle", 2, dongle.addr, t1 + 5000, false, 0},
		{"for an unregistered device", 1, spare.addr, t1 + 5000, false, 0},
	} {
		t.Run(fmt.Sprintf("PairingAt %s is %v", c.name, c.want), func(t *testing.T) {
			p, ok := w.s.PairingAt(c.device, c.vehicle, c.at)
			if ok != c.want || ok && p.FromIndex != c.from {
				t.Fatalf("PairingAt = %+v, %v", p, ok)
			}
		})
	}
	t.Run("the device lists both intervals and the vehicle the current one", func(t *testing.T) {
		d, _ := w.s.Device(dongle.addr)
		want := []Pairing{
			{VehicleID: 1, Device: dongle.addr.Hex(), Kind: KindHardware, FromIndex: 2, FromTime: t1, ToIndex: 3, ToTime: t2},
			{VehicleID: 1, Device: dongle.addr.Hex(), Kind: KindHardware, FromIndex: 4, FromTime: t3, ToIndex: -1},
		}
		if !slices.Equal(d.Pairings, want) || d.VehicleID != 1 {
			t.Fatalf("Device = %+v\nwant pairings %+v", d, want)
		}
		v, _ := w.s.Vehicle(1)
		if !slices.Equal(v.Devices, want[1:]) {
			t.Fatalf("Vehicle.Devices = %+v", v.Devices)
		}
		if got := w.s.PairingsOf(1); !slices.Equal(got, want) {
			t.Fatalf("PairingsOf(1) = %+v\nwant %+v", got, want)
		}
		if got := w.s.PairingsOf(2); got != nil {
			t.Fatalf("PairingsOf(2) of a missing vehicle = %+v, want none", got)
		}
	})
}

func TestAcceptTimeAndIndex(t *testing.T) {
	t.Run("an accept time before the previous entry's is refused as bad_time", func(t *testing.T) {
		w := newFixture(t)
		_, err := w.applyAt(w.valid(TypeRegisterVehicle), w.now-1)
		checkCode(t, err, CodeBadTime)
	})
	t.Run("an accept time equal to the previous entry's is accepted", func(t *testing.T) {
		w := newFixture(t)
		w.mustApply(w.valid(TypeRegisterVehicle))
	})
	t.Run("a negative accept time on an empty log is refused as bad_time", func(t *testing.T) {
		w := newWorld(t)
		tx := w.valid(TypeRegisterVehicle)
		_, err := w.applyAt(tx, -1000)
		checkCode(t, err, CodeBadTime)
	})
	t.Run("an index other than Size() is an error without a rule code, changing nothing", func(t *testing.T) {
		w := newFixture(t)
		tx := w.valid(TypeRegisterVehicle)
		signers, _ := testDomain.Signers(tx)
		before := w.s.Digest()
		for _, idx := range []int64{w.s.Size() - 1, w.s.Size() + 1, -1} {
			_, err := w.s.Apply(&Entry{AcceptTime: w.now, Tx: tx}, signers, idx)
			if err == nil || CodeOf(err) != "" {
				t.Fatalf("index %d: err = %v", idx, err)
			}
		}
		if w.s.Digest() != before {
			t.Fatal("state changed")
		}
	})
	t.Run("signers that do not match the signatures are refused as missing_signature", func(t *testing.T) {
		w := newFixture(t)
		tx := w.valid(TypePairDevice)
		for _, signers := range [][]common.Address{nil, {alice.addr}, {alice.addr, connector.addr, bob.addr}} {
			_, err := w.s.Apply(&Entry{AcceptTime: w.now, Tx: tx}, signers, w.s.Size())
			checkCode(t, err, CodeMissingSignature)
		}
	})
	t.Run("a transaction of an unknown type is refused as malformed", func(t *testing.T) {
		w := newFixture(t)
		tx := &Tx{Type: typeEnd, Signatures: make([]Signature, 1)}
		_, err := w.s.Apply(&Entry{AcceptTime: w.now, Tx: tx}, []common.Address{alice.addr}, w.s.Size())
		checkCode(t, err, CodeMalformed)
	})
	t.Run("Signers of an unsigned transaction is missing_signature", func(t *testing.T) {
		_, err := testDomain.Signers(message(TypeBurnVehicle, 1, testStart))
		checkCode(t, err, CodeMissingSignature)
	})
	t.Run("a signature from another log recovers someone else", func(t *testing.T) {
		w := newFixture(t)
		tx := w.msg(TypeBurnVehicle)
		if err := NewDomain("other.example/log").Sign(tx, alice.key); err != nil {
			t.Fatal(err)
		}
		w.expect(tx, CodeNotOwner)
	})
}

func TestViewsAreCopies(t *testing.T) {
	w := newFixture(t)
	before := w.s.Digest()
	v, _ := w.s.Vehicle(1)
	v.Grants[0].Permissions[0] = "mutated"
	v.Devices[0].ToIndex = 99
	d, _ := w.s.Device(dongle.addr)
	d.Pairings[0].VehicleID = 99
	a, _ := w.s.App(insurer.addr)
	a.RedirectURIs[0] = "mutated"
	g, _ := w.s.GrantOf(1, insurer.addr)
	g.Permissions[0] = "mutated"
	acc := w.s.Account(alice.addr)
	acc.GrantsGiven[0].Permissions[0] = "mutated"
	snap := w.s.Snapshot()
	snap.Vehicles[0].Grants[0].Permissions[0] = "mutated"
	if w.s.Digest() != before {
		t.Fatal("changing a returned view changed the state")
	}
	if _, ok := w.s.Vehicle(2); ok {
		t.Fatal("Vehicle(2) exists")
	}
	if _, ok := w.s.Device(spare.addr); ok {
		t.Fatal("Device(spare) exists")
	}
	if _, ok := w.s.App(fleet.addr); ok {
		t.Fatal("App(fleet) exists")
	}
	if _, ok := w.s.GrantOf(9, insurer.addr); ok {
		t.Fatal("GrantOf(9) exists")
	}
}

func TestAccount(t *testing.T) {
	w := newFixture(t)
	w.mustApply(w.valid(TypeRegisterApp))
	for _, c := range []struct {
		name  string
		who   actor
		check func(a Account) bool
	}{
		{"an owner lists vehicles and grants given", alice, func(a Account) bool {
			return slices.Equal(a.Vehicles, []uint64{1}) && len(a.GrantsGiven) == 1 && a.Device == nil && a.App == nil && len(a.GrantsHeld) == 0
		}},
		{"an app owner lists its apps in order", dev, func(a Account) bool {
			want := []string{insurer.addr.Hex(), fleet.addr.Hex()}
			slices.Sort(want)
			return slices.Equal(a.Apps, want)
		}},
		{"an app lists its grants held", insurer, func(a Account) bool {
			return a.App != nil && a.App.Owner == dev.addr.Hex() && len(a.GrantsHeld) == 1 && a.GrantsHeld[0].VehicleID == 1
		}},
		{"a device shows its pairing", dongle, func(a Account) bool { return a.Device != nil && a.Device.VehicleID == 1 }},
		{"a maker's device records the maker", connector, func(a Account) bool { return a.Device != nil && a.Device.Maker == maker.addr.Hex() }},
		{"a stranger has empty lists, not nil ones", mallory, func(a Account) bool {
			b, _ := json.Marshal(a)
			return a.Address == mallory.addr.Hex() && strings.Contains(string(b), `"vehicles":[]`) && strings.Contains(string(b), `"grantsHeld":[]`)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if a := w.s.Account(c.who.addr); !c.check(a) {
				t.Fatalf("Account(%s) = %+v", c.who.name, a)
			}
		})
	}
}

// busyWorld runs a mixed history over the fixture and returns it.
func busyWorld(t *testing.T) *world {
	w := newFixture(t)
	steps := []*Tx{
		w.valid(TypeRegisterVehicle),
		w.valid(TypeRegisterDevice),
		w.valid(TypePairDevice),
		w.valid(TypeRegisterApp),
		w.valid(TypeUpdateApp),
	}
	for _, tx := range steps {
		w.advance(1500 * time.Millisecond)
		w.mustApply(tx)
	}
	w.advance(time.Second)
	w.mustApply(w.valid(TypeUnpairDevice))
	w.mustApply(w.valid(TypeTransferVehicle))
	w.mustApply(w.sign(w.msg(TypeGrant), bob))
	return w
}

func TestSnapshotRestore(t *testing.T) {
	t.Run("Restore(Snapshot()) of an empty state has the same digest", func(t *testing.T) {
		s := NewState()
		r, err := Restore(s.Snapshot())
		if err != nil || r.Digest() != s.Digest() {
			t.Fatalf("Restore: %v", err)
		}
	})
	t.Run("Restore(Snapshot()) of a busy state has the same digest and behaves the same", func(t *testing.T) {
		w := busyWorld(t)
		r, err := Restore(w.s.Snapshot())
		if err != nil {
			t.Fatal(err)
		}
		if r.Digest() != w.s.Digest() || r.Size() != w.s.Size() || r.LastTime() != w.s.LastTime() {
			t.Fatal("restored state differs")
		}
		refused := w.valid(TypeRevoke) // bob owns vehicle 1 now
		for _, c := range []struct {
			tx   *Tx
			want Code
		}{
			{w.valid(TypeRegisterVehicle), ""},
			{w.valid(TypeRenounce), ""},
			{refused, CodeNotOwner},
			{w.sign(w.msg(TypeBurnVehicle), bob), ""},
		} {
			signers, _ := testDomain.Signers(c.tx)
			_, err := r.Apply(&Entry{AcceptTime: w.now, Tx: c.tx}, signers, r.Size())
			checkCode(t, err, c.want)
			w.expect(c.tx, c.want)
			if r.Digest() != w.s.Digest() {
				t.Fatalf("after %s the restored state differs", c.tx.Type)
			}
			if c.want == "" {
				_, err = r.Apply(&Entry{AcceptTime: w.now, Tx: c.tx}, signers, r.Size())
				checkCode(t, err, CodeNonceUsed)
			}
		}
	})
	t.Run("Restore refuses a snapshot with a bad address", func(t *testing.T) {
		w := newFixture(t)
		snap := w.s.Snapshot()
		snap.Devices[0].Address = "not an address"
		if _, err := Restore(snap); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("Restore refuses a device paired to a missing vehicle", func(t *testing.T) {
		w := newFixture(t)
		snap := w.s.Snapshot()
		snap.Vehicles = nil
		if _, err := Restore(snap); err == nil {
			t.Fatal("accepted")
		}
	})
}

// upsert applies changes onto a snapshot the way a read model would: records replace the ones with the
// same key, new nonces are added.
func upsert(snap *Changes, c Changes) {
	snap.Size, snap.LastTime, snap.NextVehicle = c.Size, c.LastTime, c.NextVehicle
	for _, v := range c.Vehicles {
		if i := slices.IndexFunc(snap.Vehicles, func(x Vehicle) bool { return x.ID == v.ID }); i >= 0 {
			snap.Vehicles[i] = v
		} else {
			snap.Vehicles = append(snap.Vehicles, v)
		}
	}
	for _, d := range c.Devices {
		if i := slices.IndexFunc(snap.Devices, func(x Device) bool { return x.Address == d.Address }); i >= 0 {
			snap.Devices[i] = d
		} else {
			snap.Devices = append(snap.Devices, d)
		}
	}
	for _, a := range c.Apps {
		if i := slices.IndexFunc(snap.Apps, func(x App) bool { return x.Address == a.Address }); i >= 0 {
			snap.Apps[i] = a
		} else {
			snap.Apps = append(snap.Apps, a)
		}
	}
	snap.Nonces = append(snap.Nonces, c.Nonces...)
}

func TestTakeChanges(t *testing.T) {
	w := newFixture(t)
	w.s.TrackChanges()
	model := w.s.Snapshot()
	check := func(t *testing.T) {
		t.Helper()
		upsert(&model, w.s.TakeChanges())
		r, err := Restore(model)
		if err != nil {
			t.Fatal(err)
		}
		if r.Digest() != w.s.Digest() {
			t.Fatal("the read model upserted from TakeChanges differs from the state")
		}
	}
	t.Run("changes of registrations and a pairing upsert to the same state", func(t *testing.T) {
		w.mustApply(w.valid(TypeRegisterVehicle))
		w.mustApply(w.valid(TypeRegisterDevice))
		w.advance(time.Second)
		w.mustApply(w.valid(TypePairDevice))
		w.mustApply(w.valid(TypeRegisterApp))
		check(t)
	})
	t.Run("a refusal records no change", func(t *testing.T) {
		w.expect(w.valid(TypePairDevice), CodeAlreadyPaired)
		w.expect(w.sign(w.msg(TypeRegisterVehicle), mallory), CodeWrongSigner)
		c := w.s.TakeChanges()
		if len(c.Vehicles)+len(c.Devices)+len(c.Apps)+len(c.Nonces) != 0 || c.Size != w.s.Size() {
			t.Fatalf("changes after refusals: %+v", c)
		}
	})
	t.Run("an UpdateApp touches only the app", func(t *testing.T) {
		w.mustApply(w.valid(TypeUpdateApp))
		c := w.s.TakeChanges()
		if len(c.Vehicles) != 0 || len(c.Devices) != 0 || len(c.Apps) != 1 || len(c.Nonces) != 1 {
			t.Fatalf("changes: %+v", c)
		}
		upsert(&model, c)
	})
	t.Run("changes of grants, an unpairing, a transfer and a burn upsert to the same state", func(t *testing.T) {
		w.advance(time.Second)
		w.mustApply(w.valid(TypeGrant))
		w.mustApply(w.valid(TypeUnpairDevice))
		w.mustApply(w.valid(TypeTransferVehicle))
		w.mustApply(w.sign(w.msg(TypeGrant), bob))
		w.mustApply(w.valid(TypeRenounce))
		w.mustApply(w.sign(w.msg(TypeGrant), bob))
		check(t)
		w.advance(time.Second)
		w.mustApply(w.sign(w.msg(TypeBurnVehicle), bob))
		check(t)
	})
}

func TestCodes(t *testing.T) {
	all := []Code{CodeMalformed, CodeBadSignature, CodeMissingSignature, CodeWrongSigner, CodeNotOwner, CodeNonceUsed,
		CodeExpired, CodeDeadlineTooFar, CodeInvalidField, CodeUnknownVehicle, CodeUnknownDevice, CodeUnknownApp,
		CodeUnknownPermission, CodeVehicleBurned, CodeAlreadyRegistered, CodeAlreadyPaired, CodeKindTaken,
		CodeNotPaired, CodeNoGrant, CodeBadTime, CodeInvisibleText, CodeRetentionTooLong, CodeBeforeInFuture, CodeNeverOwned}
	t.Run("every code is documented exactly once", func(t *testing.T) {
		var documented []Code
		for _, d := range CodeDescriptions {
			if d.Description == "" {
				t.Errorf("%s has no description", d.Code)
			}
			documented = append(documented, d.Code)
		}
		if !slices.Equal(documented, all) {
			t.Fatalf("documented %v\nwant %v", documented, all)
		}
	})
	t.Run("CodeOf sees through wrapping and ignores other errors", func(t *testing.T) {
		err := fmt.Errorf("submit: %w", errorf(CodeNoGrant, "x"))
		if CodeOf(err) != CodeNoGrant || CodeOf(errors.New("x")) != "" || CodeOf(nil) != "" {
			t.Fatal("CodeOf is wrong")
		}
		if got := errorf(CodeNoGrant, "app %d", 7).Error(); got != "no_grant: app 7" {
			t.Fatalf("Error() = %q", got)
		}
	})
	t.Run("permission and type names are stable", func(t *testing.T) {
		if len(Permissions) != 8 || !KnownPermission(PermCommands) || KnownPermission("") {
			t.Fatal("permission list changed")
		}
		if _, ok := ParseTxType("EIP712Domain"); ok {
			t.Fatal("EIP712Domain parsed as a transaction type")
		}
		if TxType(0).String() != "TxType(0)" || TxType(math.MaxUint8).String() != "TxType(255)" {
			t.Fatal("String of an invalid type")
		}
	})
}

func TestLargestAcceptedTransactionsReencode(t *testing.T) {
	for _, c := range []struct {
		name string
		fill string // repeated into every redirect URI
	}{
		{"ampersands", "&"},
		{"angle brackets", "<>"},
		{"quotes and backslashes", `"\`},
		{"line separators", "\u2028"},
	} {
		t.Run("a RegisterApp with ten 512-byte redirect URIs of "+c.name+" re-encodes within MaxTxJSON", func(t *testing.T) {
			w := newFixture(t)
			tx := w.msg(TypeRegisterApp)
			tx.Name = strings.Repeat("<", MaxTextLen)
			tx.RedirectURIs = nil
			for i := range MaxRedirectURIs {
				u := fmt.Sprintf("https://fleet.example/cb%d?", i)
				for len(u)+len(c.fill) <= MaxURILen {
					u += c.fill
				}
				tx.RedirectURIs = append(tx.RedirectURIs, u)
			}
			w.mustApply(w.sign(tx, dev, fleet))
			b, err := tx.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			back, err := DecodeTxJSON(b)
			if err != nil {
				t.Fatalf("the %d-byte JSON of an accepted transaction: %v", len(b), err)
			}
			if !sameTx(back, tx) {
				t.Fatal("round trip changed the transaction")
			}
		})
	}
}

func TestTransferUnpairsTheSoftwareDeviceOnly(t *testing.T) {
	w := newFixture(t)
	pair := w.msg(TypePairDevice)
	pair.Device = connector.addr
	w.mustApply(w.sign(pair, alice, connector))
	w.mustApply(w.valid(TypeTransferVehicle))
	soft, _ := w.s.Device(connector.addr)
	if soft.VehicleID != 0 || len(soft.Pairings) != 1 || soft.Pairings[0].ToIndex != w.s.Size()-1 {
		t.Fatalf("the seller's software connector after the transfer: %+v", soft)
	}
	hard, _ := w.s.Device(dongle.addr)
	if hard.VehicleID != 1 {
		t.Fatalf("the hardware dongle after the transfer: %+v", hard)
	}
	if v, _ := w.s.Vehicle(1); len(v.Devices) != 1 || v.Devices[0].Device != dongle.addr.Hex() {
		t.Fatalf("vehicle devices after the transfer: %+v", v.Devices)
	}
}

func TestOwnershipStartsAtRegistrationAndAgainAtEachTransfer(t *testing.T) {
	w := newFixture(t)
	v, _ := w.s.Vehicle(1)
	if v.OwnedSince == 0 || v.OwnedSince > w.s.LastTime() {
		t.Fatalf("ownedSince %d after registration", v.OwnedSince)
	}
	registered := v.OwnedSince
	w.now += 60_000
	w.mustApply(w.valid(TypeTransferVehicle))
	v, _ = w.s.Vehicle(1)
	if v.OwnedSince != w.s.LastTime() || v.OwnedSince <= registered {
		t.Fatalf("ownedSince %d after the transfer at %d (registered %d)", v.OwnedSince, w.s.LastTime(), registered)
	}
}

func TestNoncesPruneByDeadline(t *testing.T) {
	// update is an UpdateApp of the fixture's insurer app by dev, with a deadline ahead seconds after the
	// world's clock: it touches nothing but the app, so the state grows only by its nonce.
	update := func(w *world, nonce uint64, ahead int64) *Tx {
		tx := message(TypeUpdateApp, nonce, w.now)
		tx.Deadline.SetUint64(uint64(w.now/1000 + ahead))
		return sign(t, tx, dev)
	}
	t.Run("the state holds only the nonces whose deadline the log's time has not passed", func(t *testing.T) {
		w := newFixture(t)
		fixture := w.s.UsedNonces() // their deadlines are an hour ahead
		for i := range 1000 {
			w.advance(10 * time.Second)
			w.mustApply(update(w, w.next(), 60))
			// Deadlines a minute ahead, one entry every 10 s: at most the last seven nonces are held,
			// with the fixture's for its first hour.
			if n := w.s.UsedNonces(); n > fixture+7 || (i >= 360 && n > 7) {
				t.Fatalf("after %d updates the state holds %d nonces", i+1, n)
			}
		}
		if n, want := len(w.s.Snapshot().Nonces), w.s.UsedNonces(); n != want {
			t.Fatalf("the snapshot lists %d nonces, the state holds %d", n, want)
		}
		// The world's cleanup replays the log from an empty state and restores the snapshot: both must
		// reach this digest.
	})
	t.Run("a transaction whose nonce was pruned is refused as expired", func(t *testing.T) {
		w := newFixture(t)
		tx := update(w, 900, 60)
		w.mustApply(tx)
		w.advance(2 * time.Minute)
		w.mustApply(update(w, w.next(), 60)) // prunes nonce 900
		if _, held := w.s.nonces[nonceKey{dev.addr, uint256.NewInt(900).Bytes32()}]; held {
			t.Fatal("nonce 900 is still held after its deadline passed")
		}
		w.expect(tx, CodeExpired)
	})
	t.Run("a nonce is refused while its deadline holds, to the second, and free after it", func(t *testing.T) {
		w := newFixture(t)
		w.mustApply(update(w, 901, 60))
		w.advance(60 * time.Second) // the accept second is the first use's deadline
		w.expect(update(w, 901, 60), CodeNonceUsed)
		w.advance(time.Second)
		w.mustApply(update(w, 901, 60))
		w.expect(update(w, 901, 30), CodeNonceUsed)
	})
	t.Run("a replay and a restored snapshot after pruning reach the live state's digest", func(t *testing.T) {
		w := newFixture(t)
		for range 50 {
			w.advance(20 * time.Second)
			w.mustApply(update(w, w.next(), 30))
		}
		r := NewState()
		for i, b := range w.entries {
			e, err := UnmarshalEntry(b)
			if err != nil {
				t.Fatal(err)
			}
			signers, err := testDomain.Signers(e.Tx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Apply(e, signers, int64(i)); err != nil {
				t.Fatalf("replay: entry %d: %v", i, err)
			}
		}
		if r.Digest() != w.s.Digest() || r.UsedNonces() != w.s.UsedNonces() {
			t.Fatalf("replay holds %d nonces, live %d; digests equal: %v", r.UsedNonces(), w.s.UsedNonces(), r.Digest() == w.s.Digest())
		}
		// A read model that appended every nonce and never deleted one restores to the same state.
		snap := w.s.Snapshot()
		snap.Nonces = nil
		for _, b := range w.entries {
			e, _ := UnmarshalEntry(b)
			signers, _ := testDomain.Signers(e.Tx)
			for _, sg := range signers {
				snap.Nonces = append(snap.Nonces, Nonce{sg, e.Tx.Nonce, int64(e.Tx.Deadline.Uint64())})
			}
		}
		restored, err := Restore(snap)
		if err != nil {
			t.Fatal(err)
		}
		if restored.Digest() != w.s.Digest() {
			t.Fatal("Restore of a snapshot that lists pruned nonces differs from the live state")
		}
	})
	t.Run("the digest lists each held nonce with its deadline", func(t *testing.T) {
		a, b := newWorld(t), newWorld(t)
		reg := func(w *world, ahead int64) *Tx {
			tx := &Tx{Type: TypeRegisterVehicle, Owner: alice.addr, Make: "Fiat", Model: "500e", Year: 2024}
			tx.Nonce.SetUint64(1)
			tx.Deadline.SetUint64(uint64(w.now/1000 + ahead))
			return sign(t, tx, alice)
		}
		a.mustApply(reg(a, 60))
		b.mustApply(reg(b, 61))
		if a.s.Digest() == b.s.Digest() {
			t.Fatal("states holding the same nonce with different deadlines have the same digest")
		}
	})
}
