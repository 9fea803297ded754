package sim

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/api/mqtt"
	"github.com/glovebox/glovebox/telemetry"
)

// MQTTTransport delivers each device's records over MQTT as that device: one connection per device,
// logged in with a signed token, publishing QoS 1 to its own topic and reading its results.
type MQTTTransport struct {
	Addr string

	mu     sync.Mutex // guards origin, keys, pubs
	origin string
	keys   map[common.Address]*ecdsa.PrivateKey
	pubs   map[common.Address]*mqtt.Publisher
}

var _ DeviceTransport = (*MQTTTransport)(nil)

// NewMQTTTransport returns a transport to the broker at addr.
func NewMQTTTransport(addr string) *MQTTTransport {
	return &MQTTTransport{Addr: addr, keys: map[common.Address]*ecdsa.PrivateKey{}, pubs: map[common.Address]*mqtt.Publisher{}}
}

// SetDevices implements DeviceTransport.
func (m *MQTTTransport) SetDevices(origin string, keys []*ecdsa.PrivateKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.origin = origin
	for _, k := range keys {
		m.keys[crypto.PubkeyToAddress(k.PublicKey)] = k
	}
}

func (m *MQTTTransport) publisher(dev common.Address) (*mqtt.Publisher, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.pubs[dev]; p != nil {
		return p, nil
	}
	key := m.keys[dev]
	if key == nil {
		return nil, fmt.Errorf("no key for device %s", dev.Hex())
	}
	p, err := mqtt.NewPublisher(mqtt.PublisherOptions{Addr: m.Addr, Key: key, Origin: m.origin})
	if err != nil {
		return nil, err
	}
	m.pubs[dev] = p
	return p, nil
}

// Send implements Transport: each device's records go out on its own connection, devices in parallel.
func (m *MQTTTransport) Send(ctx context.Context, subs []telemetry.Submission) ([]telemetry.Result, error) {
	byDev := map[common.Address][]int{}
	for i := range subs {
		dev, err := subs[i].Signer()
		if err != nil {
			return nil, err
		}
		byDev[dev] = append(byDev[dev], i)
	}
	out := make([]telemetry.Result, len(subs))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for dev, idx := range byDev {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := m.publisher(dev)
			var res []telemetry.Result
			if err == nil {
				batch := make([]telemetry.Submission, len(idx))
				for j, i := range idx {
					batch[j] = subs[i]
				}
				res, err = p.PublishAndWait(ctx, batch)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			for j, i := range idx {
				out[i] = res[j]
			}
		}()
	}
	wg.Wait()
	return out, firstErr
}

// Close closes every connection.
func (m *MQTTTransport) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.pubs {
		p.Close()
	}
}
