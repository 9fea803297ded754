package attack

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/glovebox/glovebox/internal/testnode"
)

// TestAStrangerCannotFloodACarsAccessLog: a signed-in stranger asks for a car's data under hundreds of
// aliases in one request. Each is refused, but the car's access log gains one entry per distinct refusal,
// not one per alias.
func TestAStrangerCannotFloodACarsAccessLog(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	owner := testnode.NewKey(t)
	vid := n.Vehicle(t, owner)
	stranger := n.SignIn(t, testnode.NewKey(t))
	a := graphQL(t, n, stranger, "{"+aliased(300, fmt.Sprintf("signalsLatest(tokenId: %d) { speed { value } }", vid))+" }")
	if len(a.Errors) == 0 {
		t.Fatalf("the stranger was answered: %.300s", a.Raw)
	}
	ownerToken := n.SignIn(t, owner)
	// The recorder writes in batches: wait until the entry is there, then count.
	var entries []any
	for i := 0; ; i++ {
		status, _, body := get(t, n, ownerToken, fmt.Sprintf("/v1/vehicles/%d/access?limit=500", vid))
		var page struct{ Entries []any }
		if status != 200 || json.Unmarshal(body, &page) != nil {
			t.Fatalf("access log: %d %s", status, body)
		}
		entries = page.Entries
		if len(entries) > 0 || i == 100 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // any straggler of the same request would be written by now
	_, _, body := get(t, n, ownerToken, fmt.Sprintf("/v1/vehicles/%d/access?limit=500", vid))
	var page struct{ Entries []any }
	json.Unmarshal(body, &page)
	if len(page.Entries) != 1 {
		t.Errorf("one request wrote %d entries: %.500s", len(page.Entries), body)
	}
}
