package primary

import (
	"reflect"
	"testing"
	"time"
)

func TestRegistryRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if rs, err := loadRegistry(dir); err != nil || rs != nil {
		t.Fatalf("loadRegistry(empty) = %v, %v", rs, err)
	}
	want := []ReplicaStatus{
		{Name: "a", State: "healthy", LastReceivedTID: 9, LastAppliedTID: 8, LagTransactions: 1, LagSeconds: 0.5},
		{Name: "b", State: "quarantined", LastAppliedTID: 3, Quarantine: &Quarantine{
			Reason: "disk full", Code: "storage", TID: 4, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		}},
	}
	if err := saveRegistry(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := loadRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("registry round trip:\n got %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{
		`{"version":2,"replicas":[]}`,
		`{"version":1,"replicas":[{"name":"","state":"healthy"}]}`,
		`{"version":1,"replicas":[{"name":"a","state":"sleepy"}]}`,
		`{"version":1,"replicas":[{"name":"a","state":"healthy"},{"name":"a","state":"healthy"}]}`,
		`{"version":1,"replicas":[{"name":"a","state":"quarantined"}]}`,
		`{"version":1,"replicas":[{"name":"a","state":"healthy","quarantine":{"reason":"x"}}]}`,
		`{"version":1`,
	} {
		if _, err := parseRegistry([]byte(bad)); err == nil {
			t.Errorf("parseRegistry(%s) accepted", bad)
		}
	}
}

// FuzzParseRegistry: the registry file comes from disk; no content may
// crash the primary, and what is accepted re-encodes to something accepted.
func FuzzParseRegistry(f *testing.F) {
	f.Add([]byte(`{"version":1,"replicas":[]}`))
	f.Add([]byte(`{"version":1,"replicas":[{"name":"r1","state":"quarantined","last_applied_tid":3,"quarantine":{"reason":"x","code":"storage","tid":4,"time":"2026-01-02T03:04:05Z"}}]}`))
	f.Add([]byte(`{"version":1,"replicas":[{"name":"r1","state":"healthy","last_received_tid":"00000000000000ff"}]}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := parseRegistry(b)
		if err != nil {
			return
		}
		dir := t.TempDir()
		if err := saveRegistry(dir, rs); err != nil {
			t.Fatal(err)
		}
		if _, err := loadRegistry(dir); err != nil {
			t.Fatalf("accepted registry does not reload: %v", err)
		}
	})
}
