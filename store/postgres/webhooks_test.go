package postgres_test

import (
	"testing"

	"github.com/glovebox/glovebox/store/postgres"
	"github.com/glovebox/glovebox/store/storetest"
	"github.com/glovebox/glovebox/webhook/outbox"
)

func TestWebhooksConformance(t *testing.T) {
	storetest.TestWebhooks(t, func(t *testing.T) outbox.Store { return postgres.NewWebhooks(migrated(t)) })
}
