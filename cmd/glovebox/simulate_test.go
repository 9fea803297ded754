package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/sim"
)

// TestSimulateCommand runs `glovebox simulate` twice against a real node on the same keys directory:
// the first run registers and pairs the fleet, the second reuses it; both stream records the node
// accepts.
func TestSimulateCommand(t *testing.T) {
	clearEnv(t)
	srv := startNode(t)
	dir := t.TempDir()
	args := []string{"simulate", "--node", srv.URL, "--vehicles", "6", "--rate", "100ms", "--duration", "1500ms",
		"--seed", "21", "--keys", dir}
	code, out, errOut := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "fleet ready") || !strings.Contains(out, "registered=6") || !strings.Contains(out, "paired=6") ||
		!strings.Contains(out, "keys="+dir) {
		t.Fatalf("no startup line:\n%s", out)
	}
	keys, err := sim.LoadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	cl := client.New(srv.URL)
	for _, s := range keys.Specs {
		v, err := cl.Vehicle(t.Context(), s.VehicleID)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Devices) != 1 || !strings.EqualFold(v.Devices[0].Device, s.Device.Hex()) {
			t.Fatalf("vehicle %d: devices %+v, want %s", s.VehicleID, v.Devices, s.Device.Hex())
		}
	}

	code, out2, errOut := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("second run: exit %d\n%s\n%s", code, out2, errOut)
	}
	if !strings.Contains(out2, "registered=0") || !strings.Contains(out2, "reused=6") {
		t.Fatalf("the second run did not reuse the fleet:\n%s", out2)
	}

	for _, o := range []string{out, out2} {
		m := regexp.MustCompile(`msg=done records=(\d+) sent=(\d+) accepted=(\d+) duplicates=(\d+) rejected=none`).FindStringSubmatch(o)
		if m == nil {
			t.Fatalf("no final status line, or records rejected:\n%s", o)
		}
		sent, _ := strconv.Atoi(m[2])
		accepted, _ := strconv.Atoi(m[3])
		if sent == 0 || accepted != sent {
			t.Fatalf("sent %d, accepted %d:\n%s", sent, accepted, o)
		}
	}
}

func TestSimulateUsage(t *testing.T) {
	clearEnv(t)
	for _, args := range [][]string{
		{"simulate", "extra"},
		{"simulate", "--vehicles", "0"},
		{"simulate", "--rate", "0s"},
	} {
		if code, _, _ := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if code, _, errOut := runCLI(t, "simulate", "--mqtt", "127.0.0.1:1", "--node", "http://127.0.0.1:1"); code != 1 || !strings.Contains(errOut, "couldn't reach the node") {
		t.Errorf("an unreachable node: exit %d, %s", code, errOut)
	}
}
