package mqtt_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/api/mqtt"
)

const origin = "glovebox.example/log"

// TestMQTTLoginTokenIsPlainPersonalSign: the token is what any Ethereum library's personal_sign makes
// (here go-ethereum's accounts.TextHash, the EIP-191 hash wallets sign), and CheckLogin takes it.
func TestMQTTLoginTokenIsPlainPersonalSign(t *testing.T) {
	key, _ := crypto.GenerateKey()
	addr := crypto.PubkeyToAddress(key.PublicKey)
	exp := time.Now().Add(time.Hour)
	user, pass, err := mqtt.LoginToken(key, origin, exp)
	if err != nil {
		t.Fatal(err)
	}
	if user != strings.ToLower(addr.Hex()) {
		t.Fatalf("user name %s, want %s", user, strings.ToLower(addr.Hex()))
	}
	msg := fmt.Sprintf("glovebox mqtt login\norigin: %s\ndevice: %s\nexpires: %d", origin, strings.ToLower(addr.Hex()), exp.Unix())
	if got := string(mqtt.LoginMessage(origin, addr, exp.Unix())); got != msg {
		t.Fatalf("message %q, want %q", got, msg)
	}
	sig, err := crypto.Sign(accounts.TextHash([]byte(msg)), key)
	if err != nil {
		t.Fatal(err)
	}
	sig[64] += 27
	if want := fmt.Sprintf("%d.0x%x", exp.Unix(), sig); pass != want {
		t.Fatalf("password %s, want %s", pass, want)
	}
	now := time.Now()
	for _, u := range []string{user, addr.Hex(), "0x" + strings.ToUpper(addr.Hex()[2:])} {
		l, err := mqtt.CheckLogin(u, []byte(pass), origin, now)
		if err != nil || l.Device != addr || l.Expires != exp.Unix() {
			t.Fatalf("CheckLogin(%s): %+v, %v", u, l, err)
		}
	}
	// v as 0/1 and no 0x prefix are accepted too.
	sig[64] -= 27
	if _, err := mqtt.CheckLogin(user, fmt.Appendf(nil, "%d.%x", exp.Unix(), sig), origin, now); err != nil {
		t.Fatalf("v=0/1 without 0x: %v", err)
	}
}

func TestMQTTCheckLoginRefusals(t *testing.T) {
	key, _ := crypto.GenerateKey()
	other, _ := crypto.GenerateKey()
	now := time.Now()
	user, pass, err := mqtt.LoginToken(key, origin, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, otherPass, _ := mqtt.LoginToken(other, origin, now.Add(time.Hour))
	exp, _, _ := strings.Cut(pass, ".")
	cases := []struct {
		name, user, pass, origin string
		now                      time.Time
		want                     error
	}{
		{"another origin", user, pass, "glovebox.example/other", now, mqtt.ErrWrongSigner},
		{"another key", user, otherPass, origin, now, mqtt.ErrWrongSigner},
		{"expired", user, pass, origin, now.Add(2 * time.Hour), mqtt.ErrTokenExpired},
		{"too far ahead", user, pass, origin, now.Add(-25 * time.Hour), mqtt.ErrTokenTooLong},
		{"changed expiry", user, fmt.Sprint(must(strconv.ParseInt(exp, 10, 64))+1) + pass[len(exp):], origin, now, mqtt.ErrWrongSigner},
		{"leading zero", user, "0" + pass, origin, now, mqtt.ErrBadToken},
		{"no dot", user, strings.Replace(pass, ".", "", 1), origin, now, mqtt.ErrBadToken},
		{"short signature", user, pass[:len(pass)-2], origin, now, mqtt.ErrBadToken},
		{"not hex", user, exp + ".0x" + strings.Repeat("zz", 65), origin, now, mqtt.ErrBadToken},
		{"empty", user, "", origin, now, mqtt.ErrBadToken},
		{"bad checksum", strings.Replace(common.HexToAddress("0x52908400098527886E0F7030069857D2E4169EE7").Hex(), "E7", "e7", 1), pass, origin, now, mqtt.ErrBadUsername},
		{"no 0x", user[2:], pass, origin, now, mqtt.ErrBadUsername},
		{"other user", strings.ToLower(crypto.PubkeyToAddress(other.PublicKey).Hex()), pass, origin, now, mqtt.ErrWrongSigner},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mqtt.CheckLogin(tc.user, []byte(tc.pass), tc.origin, tc.now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("CheckLogin: %v, want %v", err, tc.want)
			}
		})
	}
	for _, exp := range []time.Time{now.Add(-time.Second), now.Add(25 * time.Hour)} {
		if _, _, err := mqtt.LoginToken(key, origin, exp); err == nil {
			t.Errorf("LoginToken made a token expiring at %s", exp)
		}
	}
	if _, _, err := mqtt.LoginToken(key, "a\nb", now.Add(time.Hour)); err == nil {
		t.Error("LoginToken took an origin with a line break")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestMQTTParseTopic(t *testing.T) {
	a := common.HexToAddress("0x52908400098527886E0F7030069857D2E4169EE7")
	good := map[string]string{
		mqtt.EventsTopic(a):                          mqtt.KindEvents,
		mqtt.ResultsTopic(a):                         mqtt.KindResults,
		"glovebox/v1/devices/" + a.Hex() + "/events": mqtt.KindEvents,
		"glovebox/v1/devices/0x" + strings.ToUpper(a.Hex()[2:]) + "/results": mqtt.KindResults,
	}
	for topic, kind := range good {
		d, k, err := mqtt.ParseTopic(topic)
		if err != nil || d != a || k != kind {
			t.Errorf("ParseTopic(%s) = %s, %s, %v", topic, d.Hex(), k, err)
		}
	}
	for _, topic := range []string{
		"", "glovebox/v1/devices/", "glovebox/v1/devices/+/events", "glovebox/v1/devices/#",
		mqtt.EventsTopic(a) + "/x", mqtt.EventsTopic(a) + "/", "/" + mqtt.EventsTopic(a),
		"glovebox/v1/devices/" + strings.Replace(a.Hex(), "E7", "e7", 1) + "/events", // bad checksum
		"glovebox/v1/devices/52908400098527886e0f7030069857d2e4169ee7/events",
		"glovebox/v1/devices/0X52908400098527886E0F7030069857D2E4169EE7/events",
		"glovebox/v1/devices/" + strings.ToLower(a.Hex()) + "/commands",
		"glovebox/v2/devices/" + strings.ToLower(a.Hex()) + "/events",
	} {
		if _, _, err := mqtt.ParseTopic(topic); err == nil {
			t.Errorf("ParseTopic(%q) took it", topic)
		}
	}
}

func FuzzMQTTParseToken(f *testing.F) {
	key, _ := crypto.GenerateKey()
	user, pass, _ := mqtt.LoginToken(key, origin, time.Now().Add(time.Hour))
	f.Add(user, pass)
	f.Add(user, "1.0x")
	f.Add("0x", "99999999999999999999.00")
	f.Add(strings.ToUpper(user), "-1."+strings.Repeat("0", 130))
	now := time.Now()
	f.Fuzz(func(t *testing.T, user, pass string) {
		if exp, _, err := mqtt.ParseToken(pass); err == nil && (exp <= 0 || !strings.HasPrefix(pass, strconv.FormatInt(exp, 10)+".")) {
			t.Fatalf("ParseToken(%q) = %d", pass, exp)
		}
		l, err := mqtt.CheckLogin(user, []byte(pass), origin, now)
		if err == nil {
			// Whatever passes is a real token for this user name.
			if !strings.EqualFold(l.Device.Hex(), user) || l.Expires <= now.Unix() {
				t.Fatalf("CheckLogin(%q, %q) = %+v", user, pass, l)
			}
		}
	})
}

func FuzzMQTTParseTopic(f *testing.F) {
	a := common.HexToAddress("0x52908400098527886E0F7030069857D2E4169EE7")
	f.Add(mqtt.EventsTopic(a))
	f.Add(mqtt.ResultsTopic(a))
	f.Add("glovebox/v1/devices/" + a.Hex() + "/events")
	f.Add("glovebox/v1/devices/+/results")
	f.Add("glovebox/v1/devices/0x/events/")
	f.Fuzz(func(t *testing.T, topic string) {
		d, kind, err := mqtt.ParseTopic(topic)
		if err != nil {
			return
		}
		want := mqtt.EventsTopic(d)
		if kind == mqtt.KindResults {
			want = mqtt.ResultsTopic(d)
		}
		if strings.ToLower(topic) != want {
			t.Fatalf("ParseTopic(%q) = %s, %s; its canonical topic is %s", topic, d.Hex(), kind, want)
		}
	})
}
