package primary

import (
	"errors"
	"fmt"

	"go.uber.org/zap"
)

// ErrUnknownReplica is returned, wrapped, by the control operations for a
// replica name the registry does not hold.
var ErrUnknownReplica = errors.New("primary: no such replica in the registry")

// CodeOperator is the quarantine code of a quarantine an operator imposed.
const CodeOperator = "operator"

// QuarantineReplica records an operator's quarantine of the named replica:
// it is no longer counted for sync nor caught up, its hellos are refused
// until ReleaseReplica, and the record is persisted at once. The primary
// cannot take a replica off the multicast stream, so a replica that is live
// keeps applying what it receives (its copy stays consistent) until it
// quarantines itself too (replctl quarantine asks it to) or its session
// ends. Quarantining a quarantined replica changes nothing and is not an
// error.
func (p *Primary) QuarantineReplica(name, reason string) (ReplicaStatus, error) {
	p.mu.Lock()
	r := p.replicas[name]
	p.mu.Unlock()
	if r == nil {
		return ReplicaStatus{}, fmt.Errorf("%w: %q", ErrUnknownReplica, name)
	}
	p.quarantine(r, Quarantine{Reason: "quarantined by an operator: " + reason, Code: CodeOperator})
	return p.replicaStatus(name), nil
}

// ReleaseReplica lifts the named replica's quarantine in the registry: the
// replica is disconnected until it says hello again, and is then judged and
// caught up like any returning replica (a replica that still diverges is
// quarantined again). The registry is persisted at once. Releasing a
// replica that is not quarantined changes nothing.
func (p *Primary) ReleaseReplica(name string) (ReplicaStatus, error) {
	p.mu.Lock()
	r := p.replicas[name]
	if r == nil {
		p.mu.Unlock()
		return ReplicaStatus{}, fmt.Errorf("%w: %q", ErrUnknownReplica, name)
	}
	released := r.state == StateQuarantined
	if released {
		r.state, r.quarantine = StateDisconnected, nil
		// The member of the quarantined session is forgotten: the
		// replica is accepted again from its next hello only.
		if r.member != "" {
			delete(p.members, r.member)
			r.member = ""
		}
		p.dirty = true
		p.notifyLocked()
	}
	p.mu.Unlock()
	if released {
		p.log.Info("replica quarantine released", zap.String("replica", name))
		_ = p.saveRegistry()
	}
	return p.replicaStatus(name), nil
}

// replicaStatus returns the registry entry of the named replica.
func (p *Primary) replicaStatus(name string) ReplicaStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.registryLocked() {
		if s.Name == name {
			return s
		}
	}
	return ReplicaStatus{Name: name}
}
