package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
)

// rawConn is a minimal HTTP/1.1 client on one keep-alive connection: it writes prebuilt requests and reads
// the responses (Content-Length or chunked bodies). Like wrk, it costs the shared machine far less per
// request than net/http's client, so the benchmark measures the node rather than the load generator.
type rawConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialRaw(addr string) (*rawConn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &rawConn{c: c, r: bufio.NewReaderSize(c, 64<<10)}, nil
}

// postRequest builds the bytes of a POST request with a JSON body.
func postRequest(path string, body []byte) []byte {
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, len(body))
	return append([]byte(head), body...)
}

// postRequests builds a POST request to path for each body.
func postRequests(path string, bodies [][]byte) [][]byte {
	reqs := make([][]byte, len(bodies))
	for i, b := range bodies {
		reqs[i] = postRequest(path, b)
	}
	return reqs
}

// do sends a prebuilt request and returns the response's status and body (appended to buf[:0]).
func (rc *rawConn) do(req, buf []byte) (int, []byte, error) {
	if _, err := rc.c.Write(req); err != nil {
		return 0, nil, err
	}
	line, err := rc.r.ReadSlice('\n')
	if err != nil {
		return 0, nil, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	length, chunked := -1, false
	for {
		h, err := rc.r.ReadSlice('\n')
		if err != nil {
			return 0, nil, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		k, v, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(v)); err != nil {
				return 0, nil, fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")) && bytes.EqualFold(v, []byte("chunked")):
			chunked = true
		}
	}
	buf = buf[:0]
	switch {
	case chunked:
		for {
			l, err := rc.r.ReadSlice('\n')
			if err != nil {
				return 0, nil, err
			}
			n, err := strconv.ParseInt(string(bytes.TrimRight(l, "\r\n")), 16, 64)
			if err != nil {
				return 0, nil, fmt.Errorf("bad chunk size %q", l)
			}
			if n == 0 {
				if _, err := rc.r.Discard(2); err != nil {
					return 0, nil, err
				}
				return status, buf, nil
			}
			start := len(buf)
			buf = append(buf, make([]byte, n)...)
			if _, err := io.ReadFull(rc.r, buf[start:]); err != nil {
				return 0, nil, err
			}
			if _, err := rc.r.Discard(2); err != nil {
				return 0, nil, err
			}
		}
	case length >= 0:
		buf = append(buf, make([]byte, length)...)
		if _, err := io.ReadFull(rc.r, buf); err != nil {
			return 0, nil, err
		}
		return status, buf, nil
	}
	return 0, nil, fmt.Errorf("response without a length")
}

func (rc *rawConn) Close() error { return rc.c.Close() }
