package main

import (
	"expvar"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"modernc.org/libc"
)

// publishSQLiteMemory publishes, once per process, the memory the SQLite engine holds in the pure-Go
// driver's own allocator (outside Go's heap) as the expvar "sqlite": live allocations, their bytes and the
// regions mapped for them. The allocator counts only in a binary built with `-tags memory.counters`;
// otherwise the figures are zero.
var publishSQLiteMemory = sync.OnceFunc(func() {
	expvar.Publish("sqlite", expvar.Func(func() any { return libc.MemStat() }))
})

// debugServer serves Go's runtime profiles (net/http/pprof) and variables (expvar, /debug/vars) on a
// listener of its own, never on the API's:
// an operator (or `glovebox bench`) reads goroutines, heap and CPU profiles of a running node there.
type debugServer struct {
	ln  net.Listener
	srv *http.Server
}

// serveDebug starts the profiles' server on addr.
func serveDebug(addr string) (*debugServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("couldn't listen for runtime profiles on %s: %w", addr, err)
	}
	publishSQLiteMemory()
	mux := http.NewServeMux()
	mux.Handle("/debug/vars", expvar.Handler())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return &debugServer{ln: ln, srv: srv}, nil
}

// Addr is the address the profiles are served on.
func (d *debugServer) Addr() net.Addr { return d.ln.Addr() }

// Close stops serving.
func (d *debugServer) Close() error { return d.srv.Close() }
