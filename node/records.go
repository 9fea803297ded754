package node

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"golang.org/x/mod/sumdb/note"

	"github.com/glovebox/glovebox/access"
	"github.com/glovebox/glovebox/api"
	"github.com/glovebox/glovebox/credential"
	"github.com/glovebox/glovebox/store/sqlite"
	"github.com/glovebox/glovebox/telemetry"
)

// sqlRecords reads stored records for the credential issuer from the records table both stores share
// (SQLite's records database, PostgreSQL's partitioned records table), oldest first.
type sqlRecords struct {
	db       *sql.DB
	postgres bool
}

const recordsPageSQL = `SELECT seq, source, id, time, pairing, event, signature FROM records
WHERE vehicle = ? AND time >= ? AND time < ? AND (time, seq) > (?, ?) ORDER BY time, seq LIMIT ?`

func (r sqlRecords) Records(ctx context.Context, q credential.RecordsQuery) ([]credential.StoredRecord, error) {
	text := recordsPageSQL
	if r.postgres {
		var b strings.Builder
		n := 0
		for _, c := range text {
			if c == '?' {
				n++
				b.WriteString("$" + strconv.Itoa(n))
				continue
			}
			b.WriteRune(c)
		}
		text = b.String()
	}
	rows, err := r.db.QueryContext(ctx, text, int64(q.Vehicle), q.Lo, q.Hi, q.AfterTime, q.AfterSeq, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("couldn't read records: %w", err)
	}
	defer rows.Close()
	var out []credential.StoredRecord
	for rows.Next() {
		var rec credential.StoredRecord
		var source, event []byte
		if err := rows.Scan(&rec.Seq, &source, &rec.ID, &rec.Time, &rec.Pairing, &event, &rec.Signature); err != nil {
			return nil, fmt.Errorf("couldn't read records: %w", err)
		}
		rec.Source = common.BytesToAddress(source)
		if rec.Event, err = sqlite.DecodeEvent(event); err != nil {
			return nil, fmt.Errorf("record %d: %w", rec.Seq, err)
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}

// credentials sets up the credential issuer: signed by the log's key, named by the node's public URL.
func credentials(publicURL string, signer note.Signer, logKey string, src *credential.Source, record func(access.Entry),
	now func() time.Time) (*api.Credentials, error) {
	is, err := credential.NewIssuer(strings.TrimRight(publicURL, "/"), signer, logKey, telemetry.DefaultCatalog)
	if err != nil {
		return nil, fmt.Errorf("couldn't set up the credential issuer: %w", err)
	}
	return &api.Credentials{Issuer: is, Source: src, Record: record, Now: now}, nil
}
