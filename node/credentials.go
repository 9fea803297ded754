package node

import (
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/glovebox/glovebox/accesslog"
	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/credential"
	"github.com/glovebox/glovebox/telemetry"
)

// credentials sets up the credential issuer: signed by the log's key, named by the node's public URL.
func credentials(publicURL string, signer note.Signer, logKey string, src *credential.Source, record func(accesslog.Entry),
	now func() time.Time) (*api.Credentials, error) {
	is, err := credential.NewIssuer(strings.TrimRight(publicURL, "/"), signer, logKey, telemetry.DefaultCatalog)
	if err != nil {
		return nil, fmt.Errorf("couldn't set up the credential issuer: %w", err)
	}
	return &api.Credentials{Issuer: is, Source: src, Record: record, Now: now}, nil
}
