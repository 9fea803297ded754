package sim

import (
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"

	"github.com/glovebox/glovebox/ledger"
)

// KeysFile is the name of the file, in the keys directory, that lists the fleet's keys and vehicle ids.
const KeysFile = "fleet.json"

// keyFile is the JSON of KeysFile. The private keys are hex without 0x; anyone holding the file can
// sign as the fleet's owners and devices.
type keyFile struct {
	Version  int          `json:"version"`
	Seed     uint64       `json:"seed"`
	Node     string       `json:"node,omitempty"`
	Origin   string       `json:"origin,omitempty"`
	Vehicles []keyVehicle `json:"vehicles"`
}

type keyVehicle struct {
	Index      int    `json:"index"`
	VehicleID  uint64 `json:"vehicleId"`
	Owner      string `json:"owner"`
	OwnerKey   string `json:"ownerKey"`
	Device     string `json:"device"`
	DeviceKey  string `json:"deviceKey"`
	DeviceKind string `json:"deviceKind"`
	Make       string `json:"make"`
	Model      string `json:"model"`
	Year       uint16 `json:"year"`
	Powertrain string `json:"powertrain"`
	City       string `json:"city"`
}

// Keys is the content of a keys directory.
type Keys struct {
	Seed   uint64
	Node   string // the node URL of the run that wrote it
	Origin string // that node's log origin
	Specs  []Spec
}

// LoadKeys reads dir/fleet.json. It returns an error satisfying errors.Is(err, os.ErrNotExist) when
// there is none.
func LoadKeys(dir string) (*Keys, error) {
	b, err := os.ReadFile(filepath.Join(dir, KeysFile))
	if err != nil {
		return nil, err
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, KeysFile), err)
	}
	if kf.Version != 1 {
		return nil, fmt.Errorf("%s: version %d, want 1", filepath.Join(dir, KeysFile), kf.Version)
	}
	k := &Keys{Seed: kf.Seed, Node: kf.Node, Origin: kf.Origin}
	for i, kv := range kf.Vehicles {
		s := Spec{Index: kv.Index, VehicleID: kv.VehicleID, DeviceKind: kv.DeviceKind, Make: kv.Make, Model: kv.Model,
			Year: kv.Year, Powertrain: Powertrain(kv.Powertrain), City: kv.City}
		if s.OwnerKey, err = parseKey(kv.OwnerKey); err != nil {
			return nil, fmt.Errorf("%s: vehicle %d: owner key: %w", KeysFile, i, err)
		}
		if s.DeviceKey, err = parseKey(kv.DeviceKey); err != nil {
			return nil, fmt.Errorf("%s: vehicle %d: device key: %w", KeysFile, i, err)
		}
		s.Owner = crypto.PubkeyToAddress(s.OwnerKey.PublicKey)
		s.Device = crypto.PubkeyToAddress(s.DeviceKey.PublicKey)
		if kv.Owner != "" && !strings.EqualFold(kv.Owner, s.Owner.Hex()) || kv.Device != "" && !strings.EqualFold(kv.Device, s.Device.Hex()) {
			return nil, fmt.Errorf("%s: vehicle %d: the addresses do not match the keys", KeysFile, i)
		}
		if s.DeviceKind != ledger.KindHardware && s.DeviceKind != ledger.KindSoftware {
			return nil, fmt.Errorf("%s: vehicle %d: device kind %q", KeysFile, i, s.DeviceKind)
		}
		switch s.Powertrain {
		case Petrol, Diesel, Electric:
		default:
			return nil, fmt.Errorf("%s: vehicle %d: powertrain %q", KeysFile, i, s.Powertrain)
		}
		k.Specs = append(k.Specs, s)
	}
	return k, nil
}

func parseKey(h string) (*ecdsa.PrivateKey, error) {
	b, err := hex.DecodeString(strings.TrimPrefix(h, "0x"))
	if err != nil {
		return nil, err
	}
	return crypto.ToECDSA(b)
}

// SaveKeys writes dir/fleet.json (mode 0600, the directory 0700), replacing it atomically.
func SaveKeys(dir string, k *Keys) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	kf := keyFile{Version: 1, Seed: k.Seed, Node: k.Node, Origin: k.Origin, Vehicles: []keyVehicle{}}
	for _, s := range k.Specs {
		kf.Vehicles = append(kf.Vehicles, keyVehicle{
			Index: s.Index, VehicleID: s.VehicleID,
			Owner: s.Owner.Hex(), OwnerKey: hex.EncodeToString(crypto.FromECDSA(s.OwnerKey)),
			Device: s.Device.Hex(), DeviceKey: hex.EncodeToString(crypto.FromECDSA(s.DeviceKey)),
			DeviceKind: s.DeviceKind, Make: s.Make, Model: s.Model, Year: s.Year, Powertrain: string(s.Powertrain), City: s.City,
		})
	}
	b, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, KeysFile+".*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(append(b, '\n'))
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, KeysFile))
}

// OwnerKeyFile is the name of the Web3 key file of the first vehicle's owner that Run writes when
// Options.OwnerPassphrase is set; DemoPassphrase is the passphrase `glovebox serve --demo` uses.
const (
	OwnerKeyFile   = "owner.json"
	DemoPassphrase = "glovebox demo"
)

// writeKeyFile writes key to path as a Web3 Secret Storage v3 file (light scrypt), unless the file
// exists.
func writeKeyFile(path string, key *ecdsa.PrivateKey, passphrase string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	id, err := uuid.NewRandom()
	if err != nil {
		return err
	}
	b, err := keystore.EncryptKey(&keystore.Key{Id: id, Address: crypto.PubkeyToAddress(key.PublicKey), PrivateKey: key},
		passphrase, keystore.LightScryptN, keystore.LightScryptP)
	if err != nil {
		return fmt.Errorf("couldn't encrypt a demo key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("couldn't write a demo key file: %w", err)
	}
	return nil
}
