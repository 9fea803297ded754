package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

func init() {
	register(command{name: "trips", args: tripsArgs, short: "list a vehicle's trips: start, duration, distance, driving events", run: runTrips})
}

const tripsArgs = "--vehicle ID --key FILE [--passphrase-file FILE] [--node URL] [--from T] [--to T] [--mechanism M] [--timezone ZONE] [--json]"

// tripsQuery pages through segments: the defaults' odometer and speed aggregations give distance and
// top speed, eventCounts the driving events.
const tripsQuery = `query($id: Int!, $from: Time!, $to: Time!, $m: DetectionMechanism!, $after: Time) {
  segments(tokenId: $id, from: $from, to: $to, mechanism: $m, limit: 200, after: $after) {
    id start { timestamp } end { timestamp } duration isOngoing startedBeforeRange
    signals { name agg value } eventCounts { name count } } }`

// tripView is one trip as trips --json prints it.
type tripView struct {
	ID                 string         `json:"id"`
	Start              string         `json:"start"`
	End                string         `json:"end,omitempty"`
	DurationSeconds    int            `json:"durationSeconds"`
	DistanceKm         *float64       `json:"distanceKm"`
	MaxSpeedKph        *float64       `json:"maxSpeedKph"`
	Events             map[string]int `json:"events"`
	IsOngoing          bool           `json:"isOngoing"`
	StartedBeforeRange bool           `json:"startedBeforeRange"`
}

func runTrips(ctx context.Context, args []string) error {
	fl := newCommandFlags("trips", tripsArgs,
		`Signs in with the key file (as glovebox token does) and lists the vehicle's trips between --from and
--to, as the GraphQL query segments detects them (--mechanism: ignitionDetection, the default, or
frequencyAnalysis, changePointDetection, idling, refuel, recharge): start, duration, distance (the
odometer's first and last value), top speed and the driving events in each. The owner and apps with the
permission insights may read them; no position is read or printed.

--from and --to are RFC 3339 instants or dates (YYYY-MM-DD, midnight in --timezone); by default the last
7 days. Times print in --timezone (IANA, default UTC). --json prints the trips as a JSON array, instants in
RFC 3339 UTC and durations in whole seconds.`)
	node := nodeFlag(fl)
	key := keyFileFlag(fl, "keystore `FILE` of the account to sign in as (required; env GLOVEBOX_KEY)")
	passFile := fl.String("passphrase-file", envDefault("GLOVEBOX_PASSPHRASE_FILE", ""), "`FILE` holding the passphrase of --key (env GLOVEBOX_PASSPHRASE_FILE; default: prompt)")
	vehicle := fl.String("vehicle", "", "the vehicle's `ID` (required)")
	fromArg := fl.String("from", "", "start of the range: an RFC 3339 instant or a date `T` (default: 7 days before --to)")
	toArg := fl.String("to", "", "end of the range: an RFC 3339 instant or a date `T` (default: now)")
	mechanism := fl.String("mechanism", "ignitionDetection", "how trips are detected: a DetectionMechanism `M`")
	zone := fl.String("timezone", "UTC", "IANA time `ZONE` for dates and printed times")
	asJSON := fl.Bool("json", false, "print the trips as JSON")
	if _, err := parseArgs(fl, args, 0); err != nil {
		return err
	}
	if err := required(fl, "key", "vehicle"); err != nil {
		return err
	}
	id, err := parseVehicleID(*vehicle)
	if err != nil {
		return usageError(fl, "--vehicle: %v", err)
	}
	loc, err := time.LoadLocation(*zone)
	if err != nil {
		return usageError(fl, "--timezone: %q is not an IANA time zone", *zone)
	}
	to := time.Now()
	if *toArg != "" {
		if to, err = parseInstant(*toArg, loc); err != nil {
			return usageError(fl, "--to: %v", err)
		}
	}
	from := to.AddDate(0, 0, -7)
	if *fromArg != "" {
		if from, err = parseInstant(*fromArg, loc); err != nil {
			return usageError(fl, "--from: %v", err)
		}
	}
	cl, tok, err := signIn(ctx, *node, *key, *passFile)
	if err != nil {
		return err
	}
	var trips []tripView
	vars := map[string]any{"id": id, "from": from.UTC().Format(time.RFC3339Nano), "to": to.UTC().Format(time.RFC3339Nano), "m": *mechanism}
	for {
		res, err := cl.GraphQL(ctx, tok.AccessToken, tripsQuery, vars)
		if err != nil {
			return nodeError(cl, err)
		}
		if len(res.Errors) > 0 {
			e := res.Errors[0]
			return fmt.Errorf("%v: %s", e.Extensions["code"], e.Message)
		}
		page, err := decodeTrips(res.Data)
		if err != nil {
			return err
		}
		trips = append(trips, page...)
		if len(page) < 200 {
			break
		}
		vars["after"] = page[len(page)-1].Start
	}
	if *asJSON {
		if trips == nil {
			trips = []tripView{}
		}
		return printJSON(trips)
	}
	return printTrips(trips, id, from, to, *mechanism, loc)
}

// parseInstant reads an RFC 3339 instant or a date (midnight in loc).
func parseInstant(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, loc); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 instant nor a date (YYYY-MM-DD)", s)
}

func decodeTrips(data json.RawMessage) ([]tripView, error) {
	var d struct {
		Segments []struct {
			ID                 string
			Start              struct{ Timestamp time.Time }
			End                *struct{ Timestamp time.Time }
			Duration           int
			IsOngoing          bool
			StartedBeforeRange bool
			Signals            []struct {
				Name, Agg string
				Value     float64
			}
			EventCounts []struct {
				Name  string
				Count int
			}
		}
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("the node's segments do not decode: %w", err)
	}
	out := make([]tripView, 0, len(d.Segments))
	for _, s := range d.Segments {
		v := tripView{ID: s.ID, Start: s.Start.Timestamp.UTC().Format(time.RFC3339Nano), DurationSeconds: s.Duration,
			IsOngoing: s.IsOngoing, StartedBeforeRange: s.StartedBeforeRange, Events: map[string]int{}}
		if s.End != nil {
			v.End = s.End.Timestamp.UTC().Format(time.RFC3339Nano)
		}
		var first, last *float64
		for _, sig := range s.Signals {
			val := sig.Value
			switch {
			case sig.Name == "powertrainTransmissionTravelledDistance" && sig.Agg == "FIRST":
				first = &val
			case sig.Name == "powertrainTransmissionTravelledDistance" && sig.Agg == "LAST":
				last = &val
			case sig.Name == "speed" && sig.Agg == "MAX":
				v.MaxSpeedKph = &val
			}
		}
		if first != nil && last != nil {
			km := float64(int64((*last-*first)*10+0.5)) / 10
			v.DistanceKm = &km
		}
		for _, e := range s.EventCounts {
			if e.Count > 0 {
				v.Events[e.Name] = e.Count
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// printTrips prints the trips as a table, times in loc, with a total line.
func printTrips(trips []tripView, vehicle uint64, from, to time.Time, mechanism string, loc *time.Location) error {
	const layout = "2006-01-02 15:04"
	fmt.Fprintf(stdout, "trips of vehicle %d from %s to %s (%s), %s\n", vehicle, from.In(loc).Format(layout), to.In(loc).Format(layout), loc, mechanism)
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "START\tDURATION\tDISTANCE\tTOP SPEED\tDRIVING EVENTS")
	var km float64
	var secs int
	for _, tr := range trips {
		start, _ := time.Parse(time.RFC3339Nano, tr.Start)
		when := start.In(loc).Format(layout)
		if tr.StartedBeforeRange {
			when += " (before)"
		}
		dur := (time.Duration(tr.DurationSeconds) * time.Second).String()
		if tr.IsOngoing {
			dur += " (ongoing)"
		}
		dist, speed := "-", "-"
		if tr.DistanceKm != nil {
			dist = fmt.Sprintf("%.1f km", *tr.DistanceKm)
			km += *tr.DistanceKm
		}
		if tr.MaxSpeedKph != nil {
			speed = fmt.Sprintf("%.0f km/h", *tr.MaxSpeedKph)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", when, dur, dist, speed, eventsText(tr.Events))
		secs += tr.DurationSeconds
	}
	if err := w.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(stdout, "%d trips, %.1f km, %s\n", len(trips), km, time.Duration(secs)*time.Second)
	return err
}

// eventsText words event counts: "2 harsh braking, 1 harsh acceleration".
func eventsText(counts map[string]int) string {
	if len(counts) == 0 {
		return "none"
	}
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%d %s", counts[n], eventWords(n))
	}
	return strings.Join(parts, ", ")
}

// eventWords turns behavior.harshBraking into "harsh braking".
func eventWords(name string) string {
	_, n, _ := strings.Cut(name, ".")
	var b strings.Builder
	for _, r := range n {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
