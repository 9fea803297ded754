package attack

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/internal/testnode"
)

// TestLargeBodiesHoldBoundedMemory: connections that each announce a 16 MiB batch of events, send all but
// its last byte and wait used to hold every body the node had read so far: 256 connections of one
// address, 4 GiB. The node now takes a body's share of api.BodyMemory (at most
// api.BodyMemoryPerAddress for one address) before reading it, so the heap holds one such body
// however many connections of one address wait, and two however many addresses send them (it held
// eight, 128 MiB, while the whole bound was 128 MiB); small bodies, from that address or another, are
// answered meanwhile.
func TestLargeBodiesHoldBoundedMemory(t *testing.T) {
	limits := api.DefaultServerLimits
	limits.ReadTimeout = time.Minute
	for _, tc := range []struct {
		name  string
		from  []string // a connection from each
		bound int64    // what the heap may grow by, besides 16 MiB of slack
	}{
		{"eight connections of one address", slices.Repeat([]string{"127.0.0.1"}, 8), api.BodyMemoryPerAddress},
		{"eight addresses", []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8"}, api.BodyMemory},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := testnode.Start(t, testnode.Options{Limits: &limits})
			grown := holdLargeBodies(t, n, tc.from)
			if limit := tc.bound + 16<<20; grown > limit {
				t.Fatalf("the heap grew by %d MiB, over the %d MiB they may hold (and 16 MiB of slack)", grown>>20, limit>>20)
			}
			smallBodiesPass(t, n)
		})
	}
}

// holdLargeBodies announces a 16 MiB batch of events on a connection from each address of from, sends all
// but its last byte, and returns how much the node's heap in use grew.
func holdLargeBodies(t *testing.T, n *testnode.Node, from []string) (grown int64) {
	size := api.MaxEventBatchBody
	chunk := strings.Repeat(" ", 1<<20)
	before := testnode.HeapInUse()
	sent := make(chan error, len(from))
	for _, local := range from {
		c := dial(t, n, local)
		go func() {
			w := bufio.NewWriter(c)
			fmt.Fprintf(w, "POST /v1/events HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", size)
			// All but the last byte; a node that reads it holds it. The write of a body the node does not
			// read yet stops when the socket buffers are full: that is the point.
			c.SetWriteDeadline(time.Now().Add(3 * time.Second))
			left := size - 1
			var err error
			for left > 0 && err == nil {
				k := min(left, len(chunk))
				_, err = w.WriteString(chunk[:k])
				left -= k
			}
			if err == nil {
				err = w.Flush()
			}
			sent <- err
		}()
	}
	for range from {
		<-sent // sent, or stopped by the write deadline while the node does not read
	}
	time.Sleep(200 * time.Millisecond) // let the node read what it admitted
	grown = int64(testnode.HeapInUse()) - int64(before)
	t.Logf("heap in use grew by %d MiB with %d bodies of %d MiB waiting", grown>>20, len(from), size>>20)
	return grown
}

// smallBodiesPass checks that small bodies are answered while large ones wait.
func smallBodiesPass(t *testing.T, n *testnode.Node) {
	t.Helper()
	// Small bodies are answered meanwhile, from another address and from this one: they are not counted,
	// and never wait behind the large ones.
	for _, local := range []string{"127.0.0.2", "127.0.0.1"} {
		c := dial(t, n, local)
		br := bufio.NewReader(c)
		fmt.Fprintf(c, "POST /v1/events HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("a small body from %s was not answered: %v", local, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("a small body from %s got %s", local, resp.Status)
		}
	}
}

// TestTricklingBodiesGiveTheirShareBack: a client that announces large bodies and sends them a byte at a
// time used to hold its share of api.BodyMemory for the whole read timeout (60 s) at no cost: four
// addresses could keep every large batch of other clients waiting, for ever, with almost no bandwidth.
// A large body must now keep arriving at api.ServerLimits.MinBodyRate once its grace has passed: the
// trickling bodies are answered 408 too_slow and their shares go to the body that waited behind them,
// while a body sent at full speed after a pause within the grace passes.
func TestTricklingBodiesGiveTheirShareBack(t *testing.T) {
	limits := api.DefaultServerLimits
	limits.BodyGrace = time.Second // the default is 10 s; the rule is the same
	n := testnode.Start(t, testnode.Options{Limits: &limits})
	size := api.MaxEventBatchBody // two of them are over one address's share: the second and third wait
	const trickling = 3
	answers := make(chan *http.Response, trickling)
	for i := 0; i < trickling; i++ {
		c := dial(t, n, "127.0.0.1")
		go func() {
			fmt.Fprintf(c, "POST /v1/events HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n[", size)
			go trickle(c, " ")
			c.SetReadDeadline(time.Now().Add(40 * time.Second)) // well before the read timeout of 60 s
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Errorf("a trickling body was not answered before the read timeout: %v", err)
				resp = nil
			}
			answers <- resp
		}()
	}
	for i := 0; i < trickling; i++ {
		resp := <-answers
		if resp == nil {
			continue
		}
		var body api.ErrorBody
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout || body.Error.Code != api.CodeTooSlow {
			t.Errorf("a trickling body was answered %s %q, want 408 %s", resp.Status, body.Error.Code, api.CodeTooSlow)
		}
	}
	// A body without a Content-Length (chunked) holds the route's limit: it is paced the same way.
	ch := dial(t, n, "127.0.0.2")
	fmt.Fprintf(ch, "POST /v1/events HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n[\r\n")
	go trickle(ch, "1\r\n \r\n")
	ch.SetReadDeadline(time.Now().Add(40 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(ch), nil)
	if err != nil {
		t.Fatalf("a trickling chunked body was not answered before the read timeout: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("a trickling chunked body got %s, want 408", resp.Status)
	}
	// A client that pauses within the grace before sending its body at full speed is not cut off.
	c := dial(t, n, "127.0.0.1")
	const padding = 1 << 20
	fmt.Fprintf(c, "POST /v1/events HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n[", padding+2)
	time.Sleep(limits.BodyGrace / 2)
	fmt.Fprintf(c, "%s]", strings.Repeat(" ", padding))
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err = http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("a body sent at full speed after a pause was not answered: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("an empty batch sent at full speed after a pause got %s, want 200", resp.Status)
	}
}

// trickle writes piece to c every 100 ms until a write fails (the node closed the connection).
func trickle(c net.Conn, piece string) {
	for {
		time.Sleep(100 * time.Millisecond)
		if _, err := c.Write([]byte(piece)); err != nil {
			return
		}
	}
}
