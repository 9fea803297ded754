package ledger

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

func mustMarshal(t testing.TB, e *Entry) []byte {
	t.Helper()
	b, err := e.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary(%s): %v", e.Tx.Type, err)
	}
	return b
}

// entryCases are entries of every type, plus lists of 0, 1 and several items and unicode text.
func entryCases(t testing.TB) []digestCase {
	cs := digestCases()
	for i := range cs {
		if cs[i].tx.Signatures == nil {
			sign(t, cs[i].tx, alice)
		}
	}
	three := message(TypeRegisterDevice, 77, testStart)
	cs = append(cs, digestCase{name: "a RegisterDevice with three signatures", tx: sign(t, three, spare, maker, mallory)})
	return cs
}

func TestEntryRoundTrip(t *testing.T) {
	for _, c := range entryCases(t) {
		for _, at := range []int64{0, testStart, 1<<63 - 1} {
			t.Run(fmt.Sprintf("%s accepted at %d round-trips", c.name, at), func(t *testing.T) {
				e := &Entry{AcceptTime: at, Tx: c.tx}
				b := mustMarshal(t, e)
				back, err := UnmarshalEntry(b)
				if err != nil {
					t.Fatal(err)
				}
				if back.AcceptTime != at || !sameTx(back.Tx, c.tx) {
					t.Fatalf("got %d %+v\nwant %d %+v", back.AcceptTime, back.Tx, at, c.tx)
				}
				if again := mustMarshal(t, back); !bytes.Equal(again, b) {
					t.Fatal("re-encoding differs")
				}
				if back.AcceptSeconds() != at/1000 {
					t.Fatalf("AcceptSeconds = %d", back.AcceptSeconds())
				}
			})
		}
	}
}

func TestEntryLayout(t *testing.T) {
	tx := sampleTx(t, TypeBurnVehicle)
	b := mustMarshal(t, &Entry{AcceptTime: 0x0102030405060708, Tx: tx})
	want := []byte{1, 1, 2, 3, 4, 5, 6, 7, 8, byte(TypeBurnVehicle)}
	vid, nonce, deadline := tx.VehicleID.Bytes32(), tx.Nonce.Bytes32(), tx.Deadline.Bytes32()
	want = append(want, vid[:]...)
	want = append(want, nonce[:]...)
	want = append(want, deadline[:]...)
	want = append(want, 1)
	want = append(want, tx.Signatures[0][:]...)
	if !bytes.Equal(b, want) {
		t.Fatalf("BurnVehicle entry\n got %x\nwant %x", b, want)
	}
	rv := sampleTx(t, TypeRegisterVehicle)
	b = mustMarshal(t, &Entry{AcceptTime: 0, Tx: rv})
	want = append([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 1}, rv.Owner[:]...)
	want = append(want, 0, 10)
	want = append(want, "Volkswagen"...)
	want = append(want, 0, 10)
	want = append(want, "ID.3 Pro S"...)
	want = append(want, 0x07, 0xe7) // 2023
	if !bytes.HasPrefix(b, want) {
		t.Fatalf("RegisterVehicle entry\n got %x\nwant prefix %x", b, want)
	}
}

func TestUnmarshalEntryRefusesNonCanonical(t *testing.T) {
	for _, typ := range TxTypes() {
		tx := sampleTx(t, typ)
		good := mustMarshal(t, &Entry{AcceptTime: testStart, Tx: tx})
		nsig := len(tx.Signatures)
		sigStart := len(good) - 65*nsig
		edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
		type badCase struct {
			name string
			data []byte
		}
		cases := []badCase{
			{"a trailing byte", append(bytes.Clone(good), 0)},
			{"a trailing signature", append(bytes.Clone(good), tx.Signatures[0][:]...)},
			{"version 0", edit(func(b []byte) []byte { b[0] = 0; return b })},
			{"version 2", edit(func(b []byte) []byte { b[0] = 2; return b })},
			{"version 255", edit(func(b []byte) []byte { b[0] = 255; return b })},
			{"a negative accept time", edit(func(b []byte) []byte { b[1] |= 0x80; return b })},
			{"type 0", edit(func(b []byte) []byte { b[9] = 0; return b })},
			{"type 14", edit(func(b []byte) []byte { b[9] = 14; return b })},
			{"type 255", edit(func(b []byte) []byte { b[9] = 255; return b })},
			{"0 signatures", edit(func(b []byte) []byte { b[sigStart-1] = 0; return b[:sigStart] })},
			{"a count of 0 before a signature", edit(func(b []byte) []byte { b[sigStart-1] = 0; return b })},
			{"4 signatures", edit(func(b []byte) []byte {
				b[sigStart-1] = 4
				for range 4 - nsig {
					b = append(b, tx.Signatures[0][:]...)
				}
				return b
			})},
			{"a count above the signatures present", edit(func(b []byte) []byte { b[sigStart-1]++; return b })},
		}
		for i := range nsig {
			for _, v := range []byte{0, 1, 26, 29, 255} {
				cases = append(cases, badCase{fmt.Sprintf("v = %d in signature %d", v, i+1),
					edit(func(b []byte) []byte { b[sigStart+65*i+64] = v; return b })})
			}
		}
		// A type with other members than its own reads them wrongly and must not land on a valid entry.
		for other := range TxTypes() {
			if o := TxType(other + 1); o != typ {
				cases = append(cases, badCase{"the type byte of " + o.String(), edit(func(b []byte) []byte { b[9] = byte(o); return b })})
			}
		}
		for _, c := range cases {
			t.Run(typ.String()+" with "+c.name+" is malformed", func(t *testing.T) {
				e, err := UnmarshalEntry(c.data)
				if err == nil {
					// Swapping type bytes could, in theory, decode: then it must at least re-encode exactly.
					if b, merr := e.MarshalBinary(); merr == nil && bytes.Equal(b, c.data) && strings.HasPrefix(c.name, "the type byte") {
						return
					}
					t.Fatalf("accepted %x as %+v", c.data, e.Tx)
				}
				checkCode(t, err, CodeMalformed)
			})
		}
		t.Run(typ.String()+" truncated at every length is malformed", func(t *testing.T) {
			for n := range len(good) {
				_, err := UnmarshalEntry(good[:n])
				if CodeOf(err) != CodeMalformed {
					t.Fatalf("truncated to %d of %d bytes: %v", n, len(good), err)
				}
			}
		})
	}

	for _, c := range []struct {
		name string
		tx   func() *Tx
		find string // replaced in the encoding by bad
		bad  string
	}{
		{"a make with a 0xff byte", func() *Tx { return sampleTx(t, TypeRegisterVehicle) }, "Volkswagen", "\xffolkswagen"},
		{"a model with a lone lead byte", func() *Tx { return sampleTx(t, TypeRegisterVehicle) }, "ID.3 Pro S", "ID.3 Pro \xc3"},
		{"an app name with a UTF-16 surrogate", func() *Tx { return sampleTx(t, TypeRegisterApp) }, "Fleet Tool", "Fleet\xed\xa0\x80To"},
		{"a redirect URI with an overlong encoding", func() *Tx { return sampleTx(t, TypeRegisterApp) }, "https://fleet.example/callback", "https://fleet.example/callb\xc0\xafk"},
		{"a permission with a 0x80 byte", func() *Tx { return sampleTx(t, TypeGrant) }, "signals", "signal\x80"},
	} {
		t.Run("an entry with "+c.name+" is malformed", func(t *testing.T) {
			if len(c.find) != len(c.bad) {
				t.Fatal("test bug: replacement changes the length")
			}
			good := mustMarshal(t, &Entry{AcceptTime: testStart, Tx: c.tx()})
			i := bytes.Index(good, []byte(c.find))
			if i < 0 {
				t.Fatal("test bug: text not in the entry")
			}
			bad := bytes.Clone(good)
			copy(bad[i:], c.bad)
			_, err := UnmarshalEntry(bad)
			checkCode(t, err, CodeMalformed)
		})
	}

	t.Run("a string[] count beyond the entry is malformed without allocating it", func(t *testing.T) {
		good := mustMarshal(t, &Entry{AcceptTime: testStart, Tx: sampleTx(t, TypeGrant)})
		i := 10 + 32 + 20 // version, time, type, vehicleId, app
		if binary.BigEndian.Uint16(good[i:]) != 2 {
			t.Fatal("test bug: not the permission count")
		}
		bad := bytes.Clone(good)
		binary.BigEndian.PutUint16(bad[i:], 0xffff)
		allocs := testing.AllocsPerRun(10, func() { UnmarshalEntry(bad) })
		_, err := UnmarshalEntry(bad)
		checkCode(t, err, CodeMalformed)
		if allocs > 10 {
			t.Fatalf("%v allocations", allocs)
		}
	})
	t.Run("an entry larger than MaxEntrySize is malformed", func(t *testing.T) {
		// Built by hand: MarshalBinary refuses to write it.
		tx := sampleTx(t, TypeRegisterApp)
		b := []byte{EntryVersion, 0, 0, 0, 0, 0, 0, 0, 0, byte(TypeRegisterApp)}
		b = append(b, tx.App[:]...)
		b = append(b, tx.Owner[:]...)
		b, _ = appendString(b, tx.Name)
		b = binary.BigEndian.AppendUint16(b, 2)
		for i := range 2 {
			b, _ = appendString(b, fmt.Sprintf("https://fleet.example/%d/", i)+strings.Repeat("a", 40000))
		}
		nonce, deadline := tx.Nonce.Bytes32(), tx.Deadline.Bytes32()
		b = append(b, nonce[:]...)
		b = append(b, deadline[:]...)
		b = append(b, 1)
		b = append(b, tx.Signatures[0][:]...)
		if len(b) <= MaxEntrySize {
			t.Fatal("test bug: entry is not too large")
		}
		e, err := UnmarshalEntry(b)
		if err == nil {
			_, merr := e.MarshalBinary()
			t.Fatalf("decoded a %d-byte entry that MarshalBinary refuses to write (%v)", len(b), merr)
		}
		checkCode(t, err, CodeMalformed)
	})
}

func TestMarshalBinaryRefuses(t *testing.T) {
	withSigs := func(n int) *Tx {
		tx := sampleTx(t, TypeBurnVehicle)
		tx.Signatures = make([]Signature, n)
		for i := range tx.Signatures {
			tx.Signatures[i] = sampleTx(t, TypeBurnVehicle).Signatures[0]
		}
		return tx
	}
	huge := sampleTx(t, TypeRegisterApp)
	huge.RedirectURIs = []string{strings.Repeat("a", 40000), strings.Repeat("b", 40000)}
	longString := sampleTx(t, TypeRegisterVehicle)
	longString.Make = strings.Repeat("m", 1<<16)
	notUTF8 := sampleTx(t, TypeGrant)
	notUTF8.TermsURI = "https://insurer.example/\xff"
	for _, c := range []struct {
		name string
		e    *Entry
	}{
		{"no signature", &Entry{Tx: withSigs(0)}},
		{"four signatures", &Entry{Tx: withSigs(4)}},
		{"an unknown type", &Entry{Tx: &Tx{Type: 0, Signatures: make([]Signature, 1)}}},
		{"a string of 65536 bytes", &Entry{Tx: longString}},
		{"more than MaxEntrySize bytes", &Entry{Tx: huge}},
		{"a string that is not UTF-8", &Entry{Tx: notUTF8}},
		{"a negative accept time", &Entry{AcceptTime: -1, Tx: sampleTx(t, TypeBurnVehicle)}},
	} {
		t.Run("MarshalBinary refuses an entry with "+c.name, func(t *testing.T) {
			b, err := c.e.MarshalBinary()
			if err == nil {
				_, uerr := UnmarshalEntry(b)
				t.Fatalf("encoded (UnmarshalEntry then says %v)", uerr)
			}
			checkCode(t, err, CodeMalformed)
		})
	}
	t.Run("MarshalBinary accepts three signatures and a 65235-byte string", func(t *testing.T) {
		tx := sampleTx(t, TypeRegisterVehicle)
		tx.Make = strings.Repeat("m", 65535-300)
		b := mustMarshal(t, &Entry{Tx: withSigs(3)})
		if _, err := UnmarshalEntry(b); err != nil {
			t.Fatal(err)
		}
		b = mustMarshal(t, &Entry{Tx: tx})
		if _, err := UnmarshalEntry(b); err != nil {
			t.Fatal(err)
		}
	})
}

func TestEntryGolden(t *testing.T) {
	var b strings.Builder
	for _, typ := range TxTypes() {
		enc := mustMarshal(t, &Entry{AcceptTime: testStart, Tx: sampleTx(t, typ)})
		fmt.Fprintf(&b, "%s %s\n", typ, hex.EncodeToString(enc))
	}
	golden(t, "entries.golden", []byte(b.String()))
}
