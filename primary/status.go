package primary

import (
	"fmt"
	"sort"
	"time"

	"github.com/repld/repld/storage"
)

// State is a replica's state in the primary's registry.
type State int

// Replica states.
const (
	// StateDisconnected: not in the group, or not said hello yet in this
	// primary's life. Never counted for sync.
	StateDisconnected State = iota
	// StateCatchingUp: replaying history to the replica; not counted for
	// sync until it is live.
	StateCatchingUp
	// StateHealthy: live on the stream and counted for sync.
	StateHealthy
	// StateQuarantined: failed or divergent; nothing is sent to it and it
	// stays so across restarts until released.
	StateQuarantined
)

var stateNames = [...]string{
	StateDisconnected: "disconnected",
	StateCatchingUp:   "catching-up",
	StateHealthy:      "healthy",
	StateQuarantined:  "quarantined",
}

// String returns the state's name as status shows it.
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", int(s))
}

func parseState(s string) (State, error) {
	for i, n := range stateNames {
		if n == s {
			return State(i), nil
		}
	}
	return 0, fmt.Errorf("unknown replica state %q", s)
}

// Quarantine codes the primary records besides a replica's own failure
// codes (wire.FailureCode names).
const (
	// CodeDivergent: the replica's history differs from the primary's, seen
	// at hello.
	CodeDivergent = "divergent"
	// CodeNewerEpoch: the replica has seen a newer primary.
	CodeNewerEpoch = "newer-epoch"
)

// Quarantine says why and when a replica was quarantined.
type Quarantine struct {
	// Reason is a sentence for operators.
	Reason string `json:"reason"`
	// Code classifies it: a wire.FailureCode name reported by the replica,
	// CodeDivergent or CodeNewerEpoch.
	Code string `json:"code"`
	// TID is the transaction concerned, 0 if none.
	TID storage.TID `json:"tid"`
	// Time is when the primary recorded it.
	Time time.Time `json:"time"`
}

// ReplicaStatus is one replica as the registry knows it; it is also the
// persisted form.
type ReplicaStatus struct {
	Name            string      `json:"name"`
	State           string      `json:"state"`
	LastReceivedTID storage.TID `json:"last_received_tid"`
	LastAppliedTID  storage.TID `json:"last_applied_tid"`
	// LagTransactions is how many transactions the primary broadcast that
	// the replica has not applied (a lower bound when the replica is
	// further behind than the primary's recent-commit index reaches).
	LagTransactions uint64 `json:"lag_transactions"`
	// LagSeconds is the time between the primary's last broadcast
	// transaction and the replica's last applied one, by their TIDs (0
	// while the replica has applied nothing: see LagTransactions).
	LagSeconds float64     `json:"lag_seconds"`
	Quarantine *Quarantine `json:"quarantine,omitempty"`
}

// SyncStatus is the sync policy and whether it is currently met.
type SyncStatus struct {
	Mode      string `json:"mode"`
	K         int    `json:"k"`
	WhenShort string `json:"when_short"`
	// Degraded: fewer than K replicas are healthy (never in async mode).
	Degraded bool `json:"degraded"`
	// Healthy is the number of healthy replicas.
	Healthy int `json:"healthy"`
}

// Counters are the primary's totals since it opened, for metrics.
type Counters struct {
	// Commits counts transactions committed through the Primary.
	Commits uint64 `json:"commits"`
	// BytesReplicated counts encoded message bytes sent to replicas.
	BytesReplicated uint64 `json:"bytes_replicated"`
	MessagesSent    uint64 `json:"messages_sent"`
	FragmentsSent   uint64 `json:"fragments_sent"`
	// Quarantines counts replicas quarantined by this process.
	Quarantines uint64 `json:"quarantines"`
	// FragmentErrors and ProtocolErrors count bad input from replicas.
	FragmentErrors uint64 `json:"fragment_errors"`
	ProtocolErrors uint64 `json:"protocol_errors"`
	// Replayed counts transactions sent to replicas by catch-up.
	Replayed uint64 `json:"replayed"`
	// NotReplicated counts commits that returned ErrNotReplicated.
	NotReplicated uint64 `json:"not_replicated"`
	// SendErrors counts messages the group refused (while closing, or to a
	// member that left).
	SendErrors uint64 `json:"send_errors"`
}

// Status is a snapshot of the primary for /status.
type Status struct {
	Name     string          `json:"name"`
	Role     string          `json:"role"`
	Epoch    uint64          `json:"epoch"`
	LastTID  storage.TID     `json:"last_tid"`
	Sync     SyncStatus      `json:"sync"`
	Replicas []ReplicaStatus `json:"replicas"`
	Counters Counters        `json:"counters"`
}

// commitIndex remembers the commit number of recent TIDs, to express a
// replica's lag in transactions. It is bounded: older commits are forgotten.
type commitIndex struct {
	tids []storage.TID // ring
	head int           // next slot
	n    uint64        // commits recorded
}

const commitIndexSize = 1 << 16

// add records the next commit.
func (c *commitIndex) add(tid storage.TID) {
	if c.tids == nil {
		c.tids = make([]storage.TID, commitIndexSize)
	}
	c.tids[c.head] = tid
	c.head = (c.head + 1) % len(c.tids)
	c.n++
}

// behind returns how many recorded commits have a TID above tid.
func (c *commitIndex) behind(tid storage.TID) uint64 {
	held := min(c.n, uint64(len(c.tids)))
	// at(i) is the i-th oldest held TID.
	at := func(i int) storage.TID {
		return c.tids[(c.head-int(held)+i+len(c.tids))%len(c.tids)]
	}
	i := sort.Search(int(held), func(i int) bool { return at(i) > tid })
	return held - uint64(i)
}

// lagOf fills the lag fields of r against the last broadcast TID.
func lagOf(r *ReplicaStatus, idx *commitIndex, last storage.TID) {
	r.LagTransactions, r.LagSeconds = 0, 0
	if r.LastAppliedTID >= last {
		return
	}
	r.LagTransactions = idx.behind(r.LastAppliedTID)
	if r.LastAppliedTID != 0 {
		r.LagSeconds = last.Time().Sub(r.LastAppliedTID.Time()).Seconds()
	}
}
