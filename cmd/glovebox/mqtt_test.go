package main

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/glovebox/glovebox/api/mqtt"
	"github.com/glovebox/glovebox/internal/testnode"
)

// TestMQTTPasswordCommand: `device mqtt-password` prints a user name and login token that the node's
// broker takes, from the node's origin (--node) or offline (--origin).
func TestMQTTPasswordCommand(t *testing.T) {
	clearEnv(t)
	n := testnode.Start(t, testnode.Options{})
	broker, err := mqtt.New(mqtt.Config{Addr: "127.0.0.1:0", Ingester: n.Ingester, State: n.Sequencer.Read, Origin: n.Log.Origin(),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	go broker.Serve()
	t.Cleanup(func() { broker.Close() })

	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	if err := os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "device.json")
	if code, out, errOut := runCLI(t, "key", "new", "--out", key, "--passphrase-file", pass, "--scrypt", "light"); code != 0 {
		t.Fatalf("key new: %d %s %s", code, out, errOut)
	}
	device := addr(t, strings.TrimSpace(func() string { _, out, _ := runCLI(t, "key", "show", key); return out }()))

	parse := func(out string) (user, password string) {
		for _, line := range strings.Split(out, "\n") {
			k, v, _ := strings.Cut(line, ":")
			switch k {
			case "username":
				user = strings.TrimSpace(v)
			case "password":
				password = strings.TrimSpace(v)
			}
		}
		return user, password
	}

	// Offline, from the origin line.
	code, out, errOut := runCLI(t, "device", "mqtt-password", "--key", key, "--passphrase-file", pass, "--origin", "glovebox.example/log", "--ttl", "2h")
	if code != 0 {
		t.Fatalf("mqtt-password --origin: %d %s", code, errOut)
	}
	user, password := parse(out)
	l, err := mqtt.CheckLogin(user, []byte(password), "glovebox.example/log", time.Now())
	if err != nil || l.Device != device {
		t.Fatalf("CheckLogin(%q, %q): %+v, %v", user, password, l, err)
	}
	if d := time.Until(time.Unix(l.Expires, 0)); d < 119*time.Minute || d > 2*time.Hour {
		t.Errorf("token expires in %s, want 2h", d)
	}

	code, out, _ = runCLI(t, "device", "mqtt-password", "--key", key, "--passphrase-file", pass, "--origin", "glovebox.example/log", "--json")
	var j struct{ Username, Password, Expires string }
	if code != 0 || json.Unmarshal([]byte(out), &j) != nil || j.Username != user || j.Password == "" {
		t.Fatalf("--json: %d %q", code, out)
	}
	if _, err := mqtt.CheckLogin(j.Username, []byte(j.Password), "glovebox.example/log", time.Now()); err != nil {
		t.Fatal(err)
	}

	for _, args := range [][]string{
		{"--key", key, "--passphrase-file", pass, "--origin", "o", "--ttl", "25h"},
		{"--key", key, "--passphrase-file", pass, "--origin", "o", "--ttl", "0s"},
		{"--passphrase-file", pass, "--origin", "o"},
	} {
		if code, _, _ := runCLI(t, append([]string{"device", "mqtt-password"}, args...)...); code != 2 {
			t.Errorf("mqtt-password %v: exit %d, want 2", args, code)
		}
	}

	// From the node: register the device, then log in to the broker with what the command prints.
	if code, out, errOut := runCLI(t, "device", "register", "--kind", "hardware", "--key", key, "--passphrase-file", pass, "--node", n.URL); code != 0 {
		t.Fatalf("device register: %d %s %s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "device", "mqtt-password", "--key", key, "--passphrase-file", pass, "--node", n.URL)
	if code != 0 {
		t.Fatalf("mqtt-password --node: %d %s", code, errOut)
	}
	user, password = parse(out)
	c := paho3.NewClient(paho3.NewClientOptions().AddBroker("tcp://" + broker.Addr()).SetClientID("cli-test").
		SetUsername(user).SetPassword(password).SetProtocolVersion(4).SetAutoReconnect(false))
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("the broker refused the printed password: %v", tok.Error())
	}
	c.Disconnect(50)
}
