package access

import (
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/ledger"
)

// RoleFormerOwner is an account that owned the vehicle before its current owner.
const RoleFormerOwner Role = "former owner"

// CheckRetention decides whether caller may read vehicle vehicleID's retention policy and erasures: its
// owner may (RoleOwner), and so may every former owner (RoleFormerOwner), who asks to erase its own
// period's data and must see how that goes. Apps may not, whatever their grant.
func CheckRetention(st *ledger.State, caller common.Address, vehicleID uint64, now time.Time) (Role, error) {
	if caller == (common.Address{}) {
		return "", ErrUnauthenticated
	}
	v, ok := st.Vehicle(vehicleID)
	if !ok {
		return "", ErrNotFound
	}
	if owner, err := ledger.ParseAddress(v.Owner); err == nil && owner == caller {
		return RoleOwner, nil
	}
	if len(v.Periods(caller, now.UnixMilli())) > 0 {
		return RoleFormerOwner, nil
	}
	return "", &Denied{Permission: "owner", Reason: fmt.Sprintf("%s never owned vehicle %d", caller.Hex(), vehicleID)}
}
