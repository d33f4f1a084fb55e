package nodetest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/repld/repld/internal/admin"
	"github.com/repld/repld/storage"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// client is an HTTP client bounded in time, so a hung node fails the test.
var client = &http.Client{Timeout: 30 * time.Second}

// getJSON fetches path from the node's admin server into v.
func getJSON(t *testing.T, n *Node, path string, v any) {
	t.Helper()
	resp, err := client.Get("http://" + n.AdminAddr() + path)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", path, n.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s from %s: %s", path, n.Name, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s from %s: %v", path, n.Name, err)
	}
}

func digest(t *testing.T, n *Node, at storage.TID) admin.DigestResponse {
	t.Helper()
	var d admin.DigestResponse
	getJSON(t, n, fmt.Sprintf("/digest?at=%s&parts=64", at), &d)
	return d
}

func chainAt(t *testing.T, n *Node, tid storage.TID) string {
	t.Helper()
	var c admin.ChainResponse
	getJSON(t, n, "/chain/before?tid="+tid.String(), &c)
	if c.TID != tid.String() {
		t.Fatalf("%s has no transaction %s (newest before it: %s)", n.Name, tid, c.TID)
	}
	return c.Chain
}

// differingRanges returns the indexes of the ranges whose digests differ.
func differingRanges(a, b admin.DigestResponse) []int {
	var out []int
	for i := range a.Ranges {
		if a.Ranges[i] != b.Ranges[i] {
			out = append(out, i)
		}
	}
	return out
}

func TestClusterServesAdmin(t *testing.T) {
	c := StartCluster(t, Options{})
	commits := c.Workload(10, 3, 20)
	c.WaitCaughtUp()
	last := commits[len(commits)-1]
	if addrs := c.AdminAddrs(); len(addrs) != 3 || addrs[0] != c.Primary().AdminAddr() {
		t.Fatalf("AdminAddrs = %v", addrs)
	}
	want := digest(t, c.Primary(), last.TID)
	for _, n := range c.Nodes() {
		var st struct {
			Name  string `json:"name"`
			Role  string `json:"role"`
			Admin string `json:"admin"`
		}
		getJSON(t, n, "/status", &st)
		if st.Name != n.Name || st.Admin != n.AdminAddr() {
			t.Errorf("/status of %s = %+v", n.Name, st)
		}
		if got := chainAt(t, n, last.TID); got != last.Chain.String() {
			t.Errorf("%s: chain at %s = %s; want %s", n.Name, last.TID, got, last.Chain)
		}
		if d := differingRanges(want, digest(t, n, last.TID)); len(d) != 0 {
			t.Errorf("%s: ranges %v differ from the primary's", n.Name, d)
		}
	}

	// A restarted node serves on the same admin address, and catches up.
	r1 := c.Node("r1")
	addr := r1.AdminAddr()
	r1.Stop()
	if r1.Running() {
		t.Fatal("r1 runs after Stop")
	}
	if _, err := client.Get("http://" + addr + "/status"); err == nil {
		t.Fatal("a stopped node's admin server answers")
	}
	more := c.Workload(3, 2, 20)
	r1.Start()
	c.WaitCaughtUp("r1")
	if r1.AdminAddr() != addr {
		t.Fatalf("admin address changed across a restart: %s, then %s", addr, r1.AdminAddr())
	}
	if got := chainAt(t, r1, more[2].TID); got != more[2].Chain.String() {
		t.Fatalf("restarted r1: chain %s; want %s", got, more[2].Chain)
	}
	c.Primary().Restart()
	c.C.WaitHealthy("r1", "r2")
	getJSON(t, c.Primary(), "/status", &struct{}{})
}

func TestCorruptObject(t *testing.T) {
	c := StartCluster(t, Options{Replicas: 1})
	commits := c.Workload(5, 4, 12)
	c.WaitCaughtUp()
	last := commits[len(commits)-1]
	r1 := c.Node("r1")
	r1.CorruptObject(7, []byte("bit rot"))
	if !r1.Running() {
		t.Fatal("CorruptObject left r1 stopped")
	}
	c.C.WaitHealthy("r1") // the history agrees: the primary accepts it
	if got := chainAt(t, r1, last.TID); got != last.Chain.String() {
		t.Fatalf("corrupting an object changed the chain: %s; want %s", got, last.Chain)
	}
	d := differingRanges(digest(t, c.Primary(), last.TID), digest(t, r1, last.TID))
	if len(d) != 1 {
		t.Fatalf("ranges %v differ; want exactly the one holding object 7", d)
	}
	var objs admin.ObjectsResponse
	getJSON(t, r1, "/objects?from=7&to=7", &objs)
	if len(objs.Objects) != 1 || objs.Objects[0].Size != len("bit rot") {
		t.Fatalf("r1's object 7 = %+v", objs)
	}
}

func TestReplayFromPrimary(t *testing.T) {
	c := StartCluster(t, Options{Replicas: 2})
	c.Workload(4, 2, 10)
	c.WaitCaughtUp()
	r1, r2 := c.Node("r1"), c.Node("r2")
	r1.Stop()
	r2.Stop()
	missed := c.Workload(4, 2, 10)
	// r1 applied a different record in missed[1]; r2 never got missed[2].
	r1.ReplayFromPrimary(func(txn *storage.Transaction) bool {
		if txn.TID == missed[1].TID {
			txn.Records[0].Data = []byte("changed")
		}
		return true
	})
	r2.ReplayFromPrimary(func(txn *storage.Transaction) bool { return txn.TID != missed[2].TID })
	r1.Start()
	r2.Start()
	// Their last chains disagree with the primary's: both are divergent.
	c.C.WaitPrimaryQuarantined("r1")
	c.C.WaitPrimaryQuarantined("r2")

	if got := chainAt(t, r1, missed[0].TID); got != missed[0].Chain.String() {
		t.Errorf("r1 differs before the changed transaction")
	}
	if got := chainAt(t, r1, missed[1].TID); got == missed[1].Chain.String() {
		t.Errorf("r1's changed transaction has the primary's chain")
	}
	var txn admin.TxnResponse
	getJSON(t, r1, "/txn?tid="+missed[1].TID.String(), &txn)
	var ptxn admin.TxnResponse
	getJSON(t, c.Primary(), "/txn?tid="+missed[1].TID.String(), &ptxn)
	if txn.Records[0].OID != ptxn.Records[0].OID || txn.Records[0].SHA256 == ptxn.Records[0].SHA256 {
		t.Errorf("r1's changed record %+v vs the primary's %+v", txn.Records[0], ptxn.Records[0])
	}

	var after admin.ChainResponse
	getJSON(t, r2, "/chain/after?tid="+missed[1].TID.String(), &after)
	if after.TID != missed[3].TID.String() {
		t.Errorf("r2: transaction after %s is %s; want %s (it skipped %s)", missed[1].TID, after.TID, missed[3].TID, missed[2].TID)
	}

	// A transaction only r2 has.
	extra := r2.CommitExtra(storage.Transaction{
		Meta:    storage.TxnMeta{User: []byte("rogue")},
		Records: []storage.Record{{OID: 3, Data: []byte("extra")}},
	})
	if extra.TID <= missed[3].TID {
		t.Fatalf("extra transaction at %s, not after %s", extra.TID, missed[3].TID)
	}
	var got admin.ChainResponse
	getJSON(t, r2, "/chain/before?tid=ffffffffffffffff", &got)
	if got.TID != extra.TID.String() || got.Chain != extra.Chain.String() {
		t.Fatalf("r2's newest transaction = %+v; want %s %s", got, extra.TID, extra.Chain)
	}
}

// post POSTs a JSON body to path on the node's admin server and returns
// the status code.
func post(t *testing.T, n *Node, path, body string) int {
	t.Helper()
	resp, err := client.Post("http://"+n.AdminAddr()+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s to %s: %v", path, n.Name, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestPromoteFollowAndOldPrimary(t *testing.T) {
	c := StartCluster(t, Options{Replicas: 2})
	c.Workload(5, 2, 10)
	c.WaitCaughtUp()
	old := c.Primary()
	old.Stop()
	r1, r2 := c.Node("r1"), c.Node("r2")
	if code := post(t, r1, "/promote", ""); code != http.StatusOK {
		t.Fatalf("promote: %d", code)
	}
	if c.Primary() != r1 || !r1.IsPrimary() {
		t.Fatalf("primary is %s after promoting r1", c.Primary().Name)
	}
	if code := post(t, r2, "/follow", fmt.Sprintf(`{"primary":%q}`, r1.GCSAddr())); code != http.StatusOK {
		t.Fatalf("follow: %d", code)
	}
	c.WaitHealthy("r2")
	more := c.Workload(3, 2, 10)
	c.WaitCaughtUp("r2")

	// The old primary made a transaction its replicas never got; back as
	// a replica, it is divergent.
	extra := old.CommitExtra(storage.Transaction{Meta: storage.TxnMeta{User: []byte("lost")},
		Records: []storage.Record{{OID: 1, Data: []byte("only on the old primary")}}})
	old.StartAsReplica()
	c.WaitPrimaryQuarantined(PrimaryName)
	if q := c.PrimaryState(PrimaryName).Quarantine; q.TID != extra.TID {
		t.Fatalf("old primary quarantined at %s, want %s: %+v", q.TID, extra.TID, q)
	}
	if got := chainAt(t, r2, more[2].TID); got != more[2].Chain.String() {
		t.Fatalf("r2 chain %s; want %s", got, more[2].Chain)
	}
	// Released and resynced, it equals the new primary.
	if code := post(t, r1, "/replicas/primary/release", ""); code != http.StatusOK {
		t.Fatalf("release on the primary: %d", code)
	}
	if code := post(t, old, "/resync", ""); code != http.StatusOK {
		t.Fatalf("resync: %d", code)
	}
	c.WaitHealthy(PrimaryName)
	c.WaitCaughtUp(PrimaryName)
}

func TestPrimaryInjection(t *testing.T) {
	c := StartCluster(t, Options{Replicas: 1})
	c.Workload(3, 2, 6)
	c.WaitCaughtUp()
	p := c.Primary()
	p.CorruptObject(2, []byte("bad disk on the primary"))
	if !p.Running() || !p.IsPrimary() {
		t.Fatal("CorruptObject left the primary stopped")
	}
	c.WaitHealthy("r1")
	last := c.Workload(1, 1, 6)[0]
	c.WaitCaughtUp()
	if d := differingRanges(digest(t, p, last.TID), digest(t, c.Node("r1"), last.TID)); len(d) != 1 {
		t.Fatalf("ranges %v differ; want the one holding object 2", d)
	}
}
