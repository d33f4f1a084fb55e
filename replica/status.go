package replica

import (
	"github.com/repld/repld/storage"
)

// State is a replica's state as it sees itself.
type State string

// States of a replica.
const (
	// StateDisconnected: not in the primary's group, or its coordinator
	// is unreachable.
	StateDisconnected State = "disconnected"
	// StateCatchingUp: said hello and applies the primary's replay.
	StateCatchingUp State = "catching-up"
	// StateLive: applies the live stream.
	StateLive State = "live"
	// StateQuarantined: stopped applying after a failure; see Quarantine.
	StateQuarantined State = "quarantined"
)

// Status is a snapshot of a replica for the admin endpoint.
type Status struct {
	Name    string      `json:"name"`
	Role    string      `json:"role"` // always "replica"
	Epoch   uint64      `json:"epoch"`
	LastTID storage.TID `json:"last_tid"`
	State   State       `json:"state"`
	// Primary is the primary's contact address.
	Primary string `json:"primary"`
	// PrimaryLastTID is the primary's last TID from its heartbeats.
	PrimaryLastTID storage.TID `json:"primary_last_tid"`
	// LagSeconds is the time between PrimaryLastTID and LastTID, by their
	// TIDs; 0 when caught up or before the first heartbeat.
	LagSeconds float64     `json:"lag_seconds"`
	Quarantine *Quarantine `json:"quarantine,omitempty"`
	Counters   Counters    `json:"counters"`
}

// Counters are a replica's totals since it started.
type Counters struct {
	// Applied is the number of transactions committed.
	Applied uint64 `json:"applied"`
	// MessagesReceived and BytesReceived count whole messages from the
	// primary and their encoded bytes.
	MessagesReceived uint64 `json:"messages_received"`
	BytesReceived    uint64 `json:"bytes_received"`
	// FragmentErrors and ProtocolErrors count fragments that broke the
	// fragment format and messages that did not decode.
	FragmentErrors uint64 `json:"fragment_errors"`
	ProtocolErrors uint64 `json:"protocol_errors"`
	// RefusedEpoch counts messages refused for an epoch lower than the
	// replica's.
	RefusedEpoch uint64 `json:"refused_epoch"`
}

// lagSeconds is the time from last to primary by their TIDs.
func lagSeconds(last, primary storage.TID) float64 {
	if primary <= last || last == 0 {
		return 0
	}
	return primary.Time().Sub(last.Time()).Seconds()
}
