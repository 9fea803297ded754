package export

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/glovebox/glovebox/telemetry"
)

// appendStamp appends stamp(ms) — the time in UTC as 2006-01-02T15:04:05.000Z — without time.Format,
// which was a tenth of an export's time: the date comes from the days since 1970 by the civil-from-days
// algorithm, the time of day by division. Years outside 0–9999 go through stamp.
func appendStamp(b []byte, ms int64) []byte {
	const msPerDay = 24 * 60 * 60 * 1000
	days, rest := ms/msPerDay, ms%msPerDay
	if rest < 0 {
		days, rest = days-1, rest+msPerDay
	}
	y, m, d := civil(days)
	if y < 0 || y > 9999 {
		return append(b, stamp(ms)...)
	}
	b = append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10), 'T')
	h, mi, sec, milli := rest/3_600_000, rest/60_000%60, rest/1000%60, rest%1000
	return append(b, byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), '.', byte('0'+milli/100), byte('0'+milli/10%10), byte('0'+milli%10), 'Z')
}

// civil returns the proleptic Gregorian year, month and day of the given days since 1970-01-01
// (Howard Hinnant's days_from_civil, inverted).
func civil(days int64) (y, m, d int64) {
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	m = mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

// CSVHeader is the first line of signals.csv.
const CSVHeader = "time,signal,value,unit\n"

// AppendCSVRow appends the signals.csv row of v.
func AppendCSVRow(b []byte, v *telemetry.Value) []byte {
	b = appendStamp(b, v.Time)
	b = append(b, ',')
	b = append(b, v.Signal.Name...)
	b = append(b, ',')
	mark := len(b)
	b = appendValue(b, v)
	if needsQuotes(b[mark:]) {
		field := string(b[mark:])
		b = append(b[:mark], '"')
		for i := 0; i < len(field); i++ {
			if field[i] == '"' {
				b = append(b, '"')
			}
			b = append(b, field[i])
		}
		b = append(b, '"')
	}
	b = append(b, ',')
	b = append(b, v.Signal.Unit...)
	return append(b, '\n')
}

func needsQuotes(f []byte) bool {
	if len(f) > 0 && (f[0] == ' ' || f[0] == '\t') {
		return true
	}
	for _, c := range f {
		if c == ',' || c == '"' || c == '\n' || c == '\r' {
			return true
		}
	}
	return false
}

// AppendValueLine appends the signals.ndjson line of v: {"time", "signal", "value", "unit"}.
func AppendValueLine(b []byte, v *telemetry.Value) []byte {
	b = append(b, `{"time":"`...)
	b = appendStamp(b, v.Time)
	b = append(b, `","signal":`...)
	b = appendJSONString(b, v.Signal.Name)
	b = append(b, `,"value":`...)
	if k := v.Signal.Kind; k == telemetry.KindString {
		b = appendJSONString(b, v.String)
	} else {
		b = appendValue(b, v)
	}
	b = append(b, `,"unit":`...)
	b = appendJSONString(b, v.Signal.Unit)
	return append(b, "}\n"...)
}

// appendValue appends a value as signals.csv holds it before quoting (and signals.ndjson, but for
// strings): a number as the shortest decimal, a string as is, a string list as its JSON array, a location
// as a JSON object.
func appendValue(b []byte, v *telemetry.Value) []byte {
	switch v.Signal.Kind {
	case telemetry.KindNumber, telemetry.KindBool:
		return appendNumber(b, v.Number)
	case telemetry.KindString, telemetry.KindStrings:
		return append(b, v.String...)
	case telemetry.KindLocation:
		b = append(b, `{"latitude":`...)
		b = appendNumber(b, v.Lat)
		b = append(b, `,"longitude":`...)
		b = appendNumber(b, v.Lon)
		b = append(b, `,"hdop":`...)
		b = appendNumber(b, v.HDOP)
		return append(b, '}')
	}
	return b
}

func appendNumber(b []byte, f float64) []byte { return strconv.AppendFloat(b, f, 'f', -1, 64) }

// appendJSONString appends s as a JSON string that decodes to exactly s: quote, backslash and control
// characters escaped, everything else (valid UTF-8) as is.
func appendJSONString(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		q, _ := json.Marshal(s) // cannot be stored (ingest refuses it); never silently wrong JSON
		return append(b, q...)
	}
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// csvWriter writes RFC 4180 rows, keeping the first error.
type csvWriter struct {
	w   *csv.Writer
	err error
}

func newCSV(w io.Writer) *csvWriter { return &csvWriter{w: csv.NewWriter(w)} }

func (c *csvWriter) row(fields ...string) {
	if c.err == nil {
		c.err = c.w.Write(fields)
	}
	if c.err == nil {
		c.w.Flush()
		c.err = c.w.Error()
	}
}

const readmeText = `Glovebox data export
====================

This archive holds what a Glovebox node keeps about one vehicle for the period(s) in which you owned it
(or the part of them you asked for). Everything is plain text: JSON, one JSON object per line (NDJSON),
or CSV with a header line. Times are UTC, RFC 3339, with milliseconds.

README.txt         This file.
export.json        What the archive covers: the vehicle, you (the owner), your ownership periods, the
                   time range asked, the windows of time the archive holds (periods within the range),
                   and the snapshot it was built from (log size, snapshot time, and the token that builds
                   the same archive again).
checkpoint.txt     The node's signed checkpoint of its public log at the snapshot: the log size and root
                   hash, signed with the log's key. Every proof in ledger.ndjson is against it.
ledger.ndjson      The log entries about the vehicle: its registration, transfers, device pairings and
                   unpairings, the registration of each device paired to it, and the grants, revocations
                   and renouncements in your periods. Each line holds the entry's index, type, accept
                   time, the signed message as JSON, the entry's bytes (base64) and its inclusion proof
                   (base64 hashes).
catalogue.csv      The signal catalogue: each signal's name, COVESA VSS path, VSS type, value type
                   (number, boolean, string, string[], location), unit and the permission that guards it.
records.ndjson     The records your car's devices signed, exactly as stored: id, source device, when it
                   was measured, when the node received it, the log index of the PairDevice entry that
                   let the device speak for the car, the event (the exact bytes the device signed, as a
                   JSON string) and its signature (EIP-191 personal_sign by the source device).
signals.csv        Every signal value in those records: time, signal, value, unit. Booleans are 1 and 0,
                   string lists are JSON arrays, locations are {"latitude","longitude","hdop"} objects.
signals.ndjson     The same values, one {"time","signal","value","unit"} object per line.
events.ndjson      Driving events (harsh braking, acceleration, ...) sent by devices or derived by the
                   node from speed: time, name, duration in nanoseconds, source, metadata.
trips.ndjson       Trips the node finds from the ignition signal: id, start, end, duration, and whether
                   a trip was still going on or began before the window.
grants.ndjson      Your grants to apps, and their revocations and renouncements: log index, time, type,
                   app, permissions, expiry, purpose, terms.
access-log.ndjson  Who other than you read what of the car's data, when, with which permissions, and
                   the outcome; newest first.
summary.json       How many lines each file holds (rows without the header, for CSV files).

To check the archive without trusting the node, run:

    glovebox verify-export FILE --log-key KEY

with the log key the node publishes at /v1/node (logKey). It checks the checkpoint's signature, every
inclusion proof, your ownership periods, every record's device signature and pairing, and that the
signal files hold exactly the values of the records.
`
