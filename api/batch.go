package api

import (
	"bytes"
	"errors"
	"io"

	"github.com/go-json-experiment/json/jsontext"
)

// splitBatch returns the elements of a JSON array of transactions, each a slice of body: the whole body
// must be JSON text by RFC 8259's grammar (anything after the array refused), as encoding/json would
// take it — member names may repeat and strings may hold invalid UTF-8 here, since each transaction's
// decoding refuses those on its own, for its position alone.
func splitBatch(body []byte) ([][]byte, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(body), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, err
	}
	if tok.Kind() != '[' {
		return nil, errors.New("a batch is a JSON array of transactions")
	}
	var items [][]byte
	for dec.PeekKind() != ']' {
		v, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		end := int(dec.InputOffset())
		items = append(items, body[end-len(v):end:end])
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, err
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		if err == nil {
			err = errors.New("data after the array")
		}
		return nil, err
	}
	return items, nil
}
