package attack

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/internal/testnode"
)

// TestLargeBodiesHoldBoundedMemory: connections that each announce a 16 MiB batch of events, send all but
// its last byte and wait used to hold every body the node had read so far: 256 connections of one
// address, 4 GiB. The node now takes a body's share of api.BodyMemory (at most
// api.BodyMemoryPerAddress for one address) before reading it, so the heap holds two such bodies
// however many connections wait; small bodies, from that address or another, are answered meanwhile.
func TestLargeBodiesHoldBoundedMemory(t *testing.T) {
	limits := api.DefaultServerLimits
	limits.ReadTimeout = time.Minute
	n := testnode.Start(t, testnode.Options{Limits: &limits})
	const conns = 8
	size := api.MaxEventBatchBody
	chunk := strings.Repeat(" ", 1<<20)
	before := testnode.HeapInUse()
	sent := make(chan error, conns)
	for i := 0; i < conns; i++ {
		c := dial(t, n, "127.0.0.1")
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
	for i := 0; i < conns; i++ {
		<-sent // sent, or stopped by the write deadline while the node does not read
	}
	time.Sleep(200 * time.Millisecond) // let the node read what it admitted
	grown := int64(testnode.HeapInUse()) - int64(before)
	t.Logf("heap in use grew by %d MiB with %d bodies of %d MiB waiting", grown>>20, conns, size>>20)
	if limit := int64(api.BodyMemoryPerAddress) + 16<<20; grown > limit {
		t.Fatalf("the heap grew by %d MiB, over the %d MiB one address may hold (and 16 MiB of slack)", grown>>20, limit>>20)
	}
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
