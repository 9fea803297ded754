package mqtt

import (
	"errors"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/ledger"
)

// TopicPrefix starts every device topic.
const TopicPrefix = "glovebox/v1/devices/"

// The kinds of device topic.
const (
	KindEvents  = "events"  // a device publishes its signed records here
	KindResults = "results" // a device subscribes here for the per-record results of its publishes
)

// EventsTopic is the topic a device publishes its records to: glovebox/v1/devices/<address>/events, with
// the address in lower-case hex.
func EventsTopic(device common.Address) string {
	return TopicPrefix + strings.ToLower(device.Hex()) + "/" + KindEvents
}

// ResultsTopic is the topic where a device reads the results of its publishes:
// glovebox/v1/devices/<address>/results, with the address in lower-case hex.
func ResultsTopic(device common.Address) string {
	return TopicPrefix + strings.ToLower(device.Hex()) + "/" + KindResults
}

var errTopic = errors.New("not a device topic glovebox/v1/devices/<0x address>/events|results")

// ParseTopic parses a device topic (a topic name or a subscription filter) into the device address and
// the kind (KindEvents or KindResults). The address may be lower-case, upper-case or EIP-55 hex; anything
// else, wildcards included, is an error.
func ParseTopic(topic string) (device common.Address, kind string, err error) {
	rest, ok := strings.CutPrefix(topic, TopicPrefix)
	if !ok {
		return common.Address{}, "", errTopic
	}
	a, kind, ok := strings.Cut(rest, "/")
	if !ok || (kind != KindEvents && kind != KindResults) {
		return common.Address{}, "", errTopic
	}
	device, err = ledger.ParseAddress(a)
	if err != nil {
		return common.Address{}, "", errTopic
	}
	return device, kind, nil
}
