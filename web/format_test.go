package web_test

import (
	"encoding/json"
	"os/exec"
	"testing"
)

// TestSignalsForPeople runs src/app/format.js in Node (which CI has, for npm) on a table of signals:
// units as symbols, lists and enums in words, names that say what a signal is.
func TestSignalsForPeople(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	const script = `import("./src/app/format.js").then((f) => console.log(JSON.stringify([
  f.withUnit("21.5", "celsius"), f.withUnit("65", "percent"), f.withUnit("50", "km/h"), f.withUnit("3", ""), f.withUnit("1.8", "l/h"),
  f.stringValue("[]", "string[]"), f.stringValue("[\"GASOLINE\",\"PLUG_IN_HYBRID\"]", "string[]"), f.stringValue("COMBUSTION", "string"),
  f.stringValue("P0300", "string"), f.stringValue("1HGCM82633A004352", "string"), f.stringValue("[\"P0300\"]", "string[]"),
  f.signalLabel("powertrainCombustionEngineSpeed", {vssPath: "Vehicle.Powertrain.CombustionEngine.Speed"}),
  f.signalLabel("speed", {vssPath: "Vehicle.Speed"}),
  f.signalLabel("obdDTCList", {vssPath: "Vehicle.OBD.DTCList"}),
])))`
	out, err := exec.Command("node", "--input-type=module", "-e", script).Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := []string{
		"21.5\u00a0°C", "65\u00a0%", "50\u00a0km/h", "3", "1.8\u00a0L/h",
		"none", "Gasoline, Plug-in hybrid", "Combustion",
		"P0300", "1HGCM82633A004352", "P0300",
		"Engine speed (Powertrain › Combustion engine)",
		"Speed",
		"DTC list (OBD)",
	}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("case %d: %q, want %q", i, got[i], want[i])
		}
	}
}
