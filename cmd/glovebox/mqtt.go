package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/glovebox/glovebox/api/mqtt"
	"github.com/glovebox/glovebox/client"
)

func init() {
	register(command{name: "device mqtt-password", args: "--key DEVICE.json [--node URL | --origin ORIGIN] [--ttl 12h] [--json]",
		short: "print a device's MQTT user name and login token", run: runDeviceMQTTPassword})
}

func runDeviceMQTTPassword(ctx context.Context, args []string) error {
	fl := newCommandFlags("device mqtt-password", "--key DEVICE.json [--node URL | --origin ORIGIN] [--ttl 12h] [--json]",
		`Prints the user name (the device's address) and password (a login token signed by the device key) with
which a device connects to the node's MQTT broker to publish telemetry on
glovebox/v1/devices/<address>/events. The token names the node's log origin: from the node (--node), or
fully offline from the origin line (--origin). It is valid for --ttl (at most 24h); connect again with a
new one after that.

The token is "<expires>.<signature>": expires in unix seconds, and the EIP-191 personal_sign signature
by the device key over
  glovebox mqtt login\norigin: <origin>\ndevice: <lower-case address>\nexpires: <expires>`)
	node := nodeFlag(fl)
	origin := fl.String("origin", "", "the log's origin line, to sign without contacting a node")
	key := keyFileFlag(fl, "keystore `FILE` of the device (env GLOVEBOX_KEY)")
	passFile := fl.String("passphrase-file", envDefault("GLOVEBOX_PASSPHRASE_FILE", ""), "`FILE` holding the passphrase of --key (env GLOVEBOX_PASSPHRASE_FILE; default: prompt)")
	ttl := fl.Duration("ttl", 12*time.Hour, "how long the password stays valid (at most 24h)")
	asJSON := fl.Bool("json", false, "print {\"username\",\"password\",\"expires\"} as JSON")
	if _, err := parseArgs(fl, args, 0); err != nil {
		return err
	}
	if err := required(fl, "key"); err != nil {
		return err
	}
	if *ttl < time.Minute || *ttl > mqtt.MaxTokenTTL {
		return usageError(fl, "--ttl must be at least 1m and at most 24h")
	}
	dev, err := loadSigner(*key, *passFile, "key", "passphrase-file")
	if err != nil {
		return err
	}
	if *origin == "" {
		cl := client.New(*node)
		info, err := cl.Node(ctx)
		if err != nil {
			return nodeError(cl, err)
		}
		*origin = info.Origin
	}
	expires := time.Now().Add(*ttl)
	user, pass, err := mqtt.LoginToken(dev.key, *origin, expires)
	if err != nil {
		return err
	}
	exp := time.Unix(expires.Unix(), 0).UTC().Format(time.RFC3339)
	if *asJSON {
		b, err := json.Marshal(struct {
			Username string `json:"username"`
			Password string `json:"password"`
			Expires  string `json:"expires"`
		}{user, pass, exp})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	_, err = fmt.Fprintf(stdout, "username: %s\npassword: %s\nexpires:  %s\n", user, pass, exp)
	return err
}
