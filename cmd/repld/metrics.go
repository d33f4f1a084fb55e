package main

import (
	"fmt"
	"sync"

	"github.com/repld/repld/internal/admin"
	"github.com/repld/repld/primary"
	"github.com/repld/repld/replica"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/badgerstore"
)

// The metric names are an interface operators build dashboards on: change
// them only with a note in the release.

func counter(name, help string, v uint64, labels ...string) admin.Sample {
	return admin.Sample{Name: name, Help: help, Kind: admin.Counter, Value: float64(v), Labels: labels}
}

func gauge(name, help string, v float64, labels ...string) admin.Sample {
	return admin.Sample{Name: name, Help: help, Kind: admin.Gauge, Value: v, Labels: labels}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func primarySamples(st primary.Status) []admin.Sample {
	c := st.Counters
	out := []admin.Sample{
		gauge("repld_node_info", "The node's name and role (always 1).", 1, "name", st.Name, "role", st.Role),
		gauge("repld_epoch", "The primary's epoch.", float64(st.Epoch)),
		counter("repld_commits_total", "Transactions committed through the primary.", c.Commits),
		counter("repld_bytes_replicated_total", "Encoded message bytes sent to replicas.", c.BytesReplicated),
		counter("repld_messages_sent_total", "Messages sent to replicas.", c.MessagesSent),
		counter("repld_fragments_sent_total", "Fragments sent to replicas.", c.FragmentsSent),
		counter("repld_quarantines_total", "Replicas quarantined by this process.", c.Quarantines),
		counter("repld_fragment_errors_total", "Malformed fragments received from replicas.", c.FragmentErrors),
		counter("repld_protocol_errors_total", "Malformed or unexpected messages received from replicas.", c.ProtocolErrors),
		counter("repld_not_replicated_total", "Commits that returned before enough replicas acknowledged them.", c.NotReplicated),
		counter("repld_send_errors_total", "Messages the group refused to send.", c.SendErrors),
		gauge("repld_sync_degraded", "1 when fewer replicas are healthy than the sync policy asks for.", boolValue(st.Sync.Degraded)),
		gauge("repld_healthy_replicas", "Replicas live on the stream and counted for sync.", float64(st.Sync.Healthy)),
	}
	for _, r := range st.Replicas {
		out = append(out,
			gauge("repld_replica_lag_transactions", "Transactions broadcast that the replica has not applied.", float64(r.LagTransactions), "replica", r.Name),
			gauge("repld_replica_lag_seconds", "Time between the last broadcast transaction and the replica's last applied one.", r.LagSeconds, "replica", r.Name),
		)
		// One series per state, 1 for the current one, so dashboards can
		// count replicas by state.
		for _, s := range []primary.State{primary.StateDisconnected, primary.StateCatchingUp, primary.StateHealthy, primary.StateQuarantined} {
			out = append(out, gauge("repld_replica_state", "The replica's state in the registry (1 for its current state).",
				boolValue(r.State == s.String()), "replica", r.Name, "state", s.String()))
		}
	}
	return out
}

func replicaSamples(st replica.Status) []admin.Sample {
	c := st.Counters
	out := []admin.Sample{
		gauge("repld_node_info", "The node's name and role (always 1).", 1, "name", st.Name, "role", st.Role),
		gauge("repld_epoch", "The highest primary epoch this replica has seen.", float64(st.Epoch)),
		counter("repld_applied_total", "Transactions this replica committed.", c.Applied),
		counter("repld_messages_received_total", "Messages received from the primary.", c.MessagesReceived),
		counter("repld_bytes_received_total", "Encoded message bytes received from the primary.", c.BytesReceived),
		counter("repld_fragment_errors_total", "Fragments that broke the fragment format.", c.FragmentErrors),
		counter("repld_protocol_errors_total", "Messages from the primary that did not decode or came out of order.", c.ProtocolErrors),
		counter("repld_refused_epoch_total", "Messages refused for an epoch lower than the replica's.", c.RefusedEpoch),
		gauge("repld_lag_seconds", "Time between the primary's last TID (from its heartbeat) and this replica's.", st.LagSeconds),
		gauge("repld_quarantined", "1 when this replica is quarantined.", boolValue(replicaQuarantined(st))),
	}
	for _, s := range []replica.State{replica.StateDisconnected, replica.StateCatchingUp, replica.StateLive, replica.StateQuarantined} {
		out = append(out, gauge("repld_replica_state", "This replica's own state (1 for its current state).",
			boolValue(st.State == s), "replica", st.Name, "state", string(s)))
	}
	return out
}

// syncCounter is a store that counts its sync rounds: a badgerstore.
type syncCounter interface{ SyncStats() badgerstore.SyncStats }

var _ syncCounter = (*badgerstore.Store)(nil)

// storeSamples are the metrics of the node's local store: its sync rounds,
// when it counts them (other stores have none). They start from zero
// whenever the node opens its store again (a role switch), as counters of
// a restarted process do.
func storeSamples(s storage.Storage) []admin.Sample {
	sc, ok := s.(syncCounter)
	if !ok {
		return nil
	}
	st := sc.SyncStats()
	return []admin.Sample{
		counter("repld_store_syncs_total", "Sync rounds that made commits durable in the local store.", st.Rounds),
		{Name: "repld_store_sync_seconds_total", Help: "Time the local store spent in its sync rounds; rounds run one at a time, so a rate near 1 means commits wait for the disk.",
			Kind: admin.Counter, Value: st.Time.Seconds()},
	}
}

// localStore is the store the node opened last, as it was opened: the
// node's roles run on it behind the client port's wrapper, which hides
// what the store counts, so /metrics reads it here.
type localStore struct {
	mu sync.Mutex
	s  storage.Storage
}

func (l *localStore) set(s storage.Storage) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.s = s
}

func (l *localStore) get() storage.Storage {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s
}

func replicaQuarantined(st replica.Status) bool { return st.State == replica.StateQuarantined }

// replicaHealth is the replica's /healthz verdict: a quarantined replica
// serves stale reads and needs an operator, so it is unhealthy; a replica
// that is catching up or disconnected still serves consistent (older)
// snapshots and stays healthy; its lag is in /status and /metrics.
func replicaHealth(st replica.Status) error {
	if !replicaQuarantined(st) {
		return nil
	}
	reason := "no reason recorded"
	if st.Quarantine != nil {
		reason = st.Quarantine.Reason
	}
	return fmt.Errorf("replica %s is quarantined: %s", st.Name, reason)
}
