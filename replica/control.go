package replica

import "time"

// CodeOperator is the Code of a quarantine an operator imposed.
const CodeOperator = "operator"

// MarkQuarantined persists an operator's quarantine marker in a stopped
// replica's data directory: started on it, the replica is quarantined from
// the start, applies nothing and reports the quarantine to the primary in
// its hello (what replctl quarantine does to a replica).
func MarkQuarantined(dataDir, reason string, now time.Time) error {
	return writeMarker(dataDir, Quarantine{Reason: "quarantined by an operator: " + reason, Code: CodeOperator, Time: now.UTC()})
}
