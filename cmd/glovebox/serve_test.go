package main

import "testing"

func TestFitConns(t *testing.T) {
	for _, c := range []struct {
		name             string
		http, mqtt       int
		files            uint64
		wantHTTP, wantMQ int
	}{
		{"room to spare", 8192, 16384, 1 << 20, 8192, 16384},
		{"an unknown limit", 8192, 16384, 0, 8192, 16384},
		{"no caps", 0, 0, 1024, 0, 0},
		{"no HTTP cap, room", 0, 16384, 1 << 20, 0, 16384},
		// No broker (--mqtt off), or one without a cap: the HTTP cap alone takes the room.
		{"no broker, room", 8192, 0, 20000, 8192, 0},
		{"no broker", 8192, 0, 1024, 896, 0},
		{"no HTTP cap", 0, 16384, 1024, 0, 896},
		{"exactly fits", 8192, 16384, 24576 + 1024, 8192, 16384},
		// 20,000 files keep 1,024: 18,976 shared a third and two thirds.
		{"this machine", 8192, 16384, 20000, 6325, 12651},
		// 1,024 files keep an eighth, 128: 896 shared.
		{"a low limit", 8192, 16384, 1024, 298, 598},
		// 64 files keep 64: one connection each.
		{"no room", 8192, 16384, 64, 1, 1},
	} {
		h, m := fitConns(c.http, c.mqtt, c.files)
		if h != c.wantHTTP || m != c.wantMQ {
			t.Errorf("%s: fitConns(%d, %d, %d) = %d, %d, want %d, %d", c.name, c.http, c.mqtt, c.files, h, m, c.wantHTTP, c.wantMQ)
		}
	}
}
