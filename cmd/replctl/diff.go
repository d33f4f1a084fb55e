package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/repld/repld/storage"
)

// maxBisect bounds the bisection: each step at least halves a range of at
// most 2^64 TIDs, so 64 steps always suffice; the rest is margin.
const maxBisect = 80

// Side is one of the two nodes diff compares.
type Side struct {
	Node    string      `json:"node"`
	Name    string      `json:"name"`
	LastTID storage.TID `json:"last_tid"`
}

// RecordDiff is a record of the first differing transaction that is
// missing on one side or has different data. A side's TID is 0 and its hash
// empty when it does not have the record in that transaction.
type RecordDiff struct {
	OID     storage.OID `json:"oid"`
	Kind    string      `json:"kind"` // "only-a", "only-b" or "data"
	ATID    storage.TID `json:"a_tid"`
	ASHA256 string      `json:"a_sha256"`
	ASize   int64       `json:"a_size"`
	BTID    storage.TID `json:"b_tid"`
	BSHA256 string      `json:"b_sha256"`
	BSize   int64       `json:"b_size"`
}

// FieldDiff is a metadata field of the first differing transaction.
type FieldDiff struct {
	Field string `json:"field"`
	A     string `json:"a"`
	B     string `json:"b"`
}

// FirstDiff is the first transaction at which the histories differ.
type FirstDiff struct {
	TID storage.TID `json:"tid"`
	// Kind: "only-a" or "only-b" (the other side lacks a transaction with
	// this TID) or "differs" (both have it, with different content).
	Kind     string       `json:"kind"`
	Metadata []FieldDiff  `json:"metadata"`
	Records  []RecordDiff `json:"records"`
}

// DiffReport is diff's output; the JSON is a stable contract.
type DiffReport struct {
	A Side `json:"a"`
	B Side `json:"b"`
	// Identical: same history and same current state.
	Identical bool `json:"identical"`
	// CommonTID is the last TID up to which both histories agree (0: they
	// share nothing).
	CommonTID storage.TID `json:"common_tid"`
	// First is nil when the histories agree.
	First *FirstDiff `json:"first"`
	// Prefix: one history is a prefix of the other (the shorter node is
	// behind, or the longer one holds transactions the other never had).
	Prefix bool `json:"prefix"`
	// Requests counts the chain requests of the bisection.
	Requests int          `json:"chain_requests"`
	State    *StateResult `json:"state"`
}

func newDiffCmd(o *options) *cobra.Command {
	maxObjects := DefaultMaxObjects
	cmd := &cobra.Command{
		Use:   "diff NODE_A NODE_B",
		Short: "Find the first transaction and the objects where two nodes differ",
		Long: `diff finds the first TID at which two nodes' histories differ by bisecting
the TID range over their chain values (O(log range) requests), then shows
what differs in that transaction: metadata, OIDs only on one side, OIDs whose
data differs with both sides' TIDs and hashes. Last it lists the objects
whose current state differs (each node as of its last TID), found by the
same hash tree as verify.

NODE is an admin address from --nodes or a node's name. Exit status 0 when
the nodes are identical, 1 when they differ, 2 on errors.`,
		Example: `  replctl --nodes 127.0.0.1:7101,127.0.0.1:7102 diff primary r1
  replctl diff 127.0.0.1:7101 127.0.0.1:7102 --json`,
		Args:              exactArgs(2, "two nodes (NODE_A NODE_B)"),
		ValidArgsFunction: nodeCompletion(o),
		RunE: func(cmd *cobra.Command, args []string) error {
			if maxObjects <= 0 {
				return fmt.Errorf("--max-objects %d: use a positive count", maxObjects)
			}
			ctx := cmd.Context()
			views := fetchStatus(ctx, o.clients())
			a, err := findNode(views, args[0])
			if err != nil {
				return err
			}
			b, err := findNode(views, args[1])
			if err != nil {
				return err
			}
			if a == b {
				return fmt.Errorf("%s and %s are the same node; name two different ones", args[0], args[1])
			}
			rep, err := diff(ctx, a, b, maxObjects)
			if err != nil {
				return err
			}
			if err := o.printDiff(rep); err != nil {
				return err
			}
			if !rep.Identical {
				return errInconsistent
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&maxObjects, "max-objects", maxObjects, "stop after this many differing objects")
	return cmd
}

func diff(ctx context.Context, a, b *nodeView, maxObjects int) (*DiffReport, error) {
	rep := &DiffReport{
		A: Side{Node: a.c.node, Name: a.name(), LastTID: a.st.LastTID},
		B: Side{Node: b.c.node, Name: b.name(), LastTID: b.st.LastTID},
	}
	cs := []*client{a.c, b.c}
	both := func(f func(c *client) (ChainPoint, error)) (pa, pb ChainPoint, err error) {
		ps := make([]ChainPoint, 2)
		err = each(cs, func(i int, c *client) error {
			var err error
			ps[i], err = f(c)
			return err
		})
		rep.Requests += 2
		return ps[0], ps[1], err
	}
	before := func(t storage.TID) (ChainPoint, ChainPoint, error) {
		return both(func(c *client) (ChainPoint, error) { return c.chainBefore(ctx, t) })
	}
	// Invariant: the histories agree up to lo and differ at hi. They differ
	// at every TID from the first differing one on (the chain covers all
	// history), so bisection finds it.
	hi := max(rep.A.LastTID, rep.B.LastTID)
	pa, pb, err := before(hi)
	if err != nil {
		return nil, err
	}
	var lo storage.TID
	if pa != pb {
		// Start at the oldest transaction when both have it alike: TIDs are
		// timestamps, so this cuts the range from all of time to the
		// history's own span.
		fa, fb, err := both(func(c *client) (ChainPoint, error) {
			p, err := c.chainAfter(ctx, 0)
			if errors.Is(err, errNotFound) {
				return ChainPoint{}, nil
			}
			return p, err
		})
		if err != nil {
			return nil, err
		}
		if fa == fb && fa.TID != 0 {
			lo = fa.TID
		}
		for range maxBisect {
			if hi-lo <= 1 {
				break
			}
			mid := lo + (hi-lo)/2
			pa, pb, err := before(mid)
			if err != nil {
				return nil, err
			}
			if pa == pb {
				lo = mid
				continue
			}
			// Both sides are unchanged from their newest TIDs at or
			// before mid up to mid, so the difference is already there.
			if t := max(pa.TID, pb.TID); t > lo {
				hi = t
			} else {
				hi = mid
			}
		}
		if hi-lo > 1 {
			return nil, fmt.Errorf("bisection between %s and %s did not converge; are the nodes changing their history?", rep.A.Name, rep.B.Name)
		}
		common, _, err := before(lo)
		if err != nil {
			return nil, err
		}
		rep.CommonTID = common.TID
		first, err := firstDiff(ctx, a.c, b.c, lo)
		if err != nil {
			return nil, err
		}
		rep.First = first
		rep.Prefix = first.Kind != "differs" && (rep.CommonTID == rep.A.LastTID || rep.CommonTID == rep.B.LastTID)
	} else {
		rep.CommonTID = pa.TID
	}
	// Each node's current state as of its last TID when diff started: a
	// snapshot it serves unchanged while the walk runs.
	ats := []storage.TID{rep.A.LastTID, rep.B.LastTID}
	state, _, err := compareState(ctx, cs, []string{rep.A.Name, rep.B.Name}, 0, ats, maxObjects)
	if err != nil {
		return nil, err
	}
	rep.State = state
	rep.Identical = rep.First == nil && len(state.Diffs) == 0
	return rep, nil
}

// firstDiff reads the first transaction after lo on both sides and says how
// they differ.
func firstDiff(ctx context.Context, a, b *client, lo storage.TID) (*FirstDiff, error) {
	next := func(c *client) (storage.TID, bool, error) {
		p, err := c.chainAfter(ctx, lo)
		if errors.Is(err, errNotFound) {
			return 0, false, nil
		}
		return p.TID, err == nil, err
	}
	ta, okA, err := next(a)
	if err != nil {
		return nil, err
	}
	tb, okB, err := next(b)
	if err != nil {
		return nil, err
	}
	f := &FirstDiff{Metadata: []FieldDiff{}, Records: []RecordDiff{}}
	var xa, xb *Txn
	switch {
	case !okA && !okB:
		return nil, fmt.Errorf("%s and %s both have no transaction after %s, yet their chains differ; are they changing?", a.node, b.node, lo)
	case okA && (!okB || ta < tb):
		f.TID, f.Kind = ta, "only-a"
	case okB && (!okA || tb < ta):
		f.TID, f.Kind = tb, "only-b"
	default:
		f.TID, f.Kind = ta, "differs"
	}
	if f.Kind != "only-b" {
		if xa, err = a.txn(ctx, f.TID); err != nil {
			return nil, err
		}
	}
	if f.Kind != "only-a" {
		if xb, err = b.txn(ctx, f.TID); err != nil {
			return nil, err
		}
	}
	if xa != nil && xb != nil {
		for _, fd := range []FieldDiff{
			{"user", xa.User, xb.User},
			{"description", xa.Description, xb.Description},
			{"extension", fmt.Sprintf("%x", xa.Extension), fmt.Sprintf("%x", xb.Extension)},
		} {
			if fd.A != fd.B {
				f.Metadata = append(f.Metadata, fd)
			}
		}
	}
	f.Records = recordDiffs(f.TID, xa, xb)
	return f, nil
}

// recordDiffs merges two transactions' records (either may be nil) by OID.
func recordDiffs(tid storage.TID, xa, xb *Txn) []RecordDiff {
	var ra, rb []Record
	if xa != nil {
		ra = xa.Records
	}
	if xb != nil {
		rb = xb.Records
	}
	out := []RecordDiff{}
	i, j := 0, 0
	for i < len(ra) || j < len(rb) {
		switch {
		case j == len(rb) || i < len(ra) && ra[i].OID < rb[j].OID:
			r := ra[i]
			out = append(out, RecordDiff{OID: r.OID, Kind: "only-a", ATID: tid, ASHA256: r.SHA256.String(), ASize: r.Size})
			i++
		case i == len(ra) || rb[j].OID < ra[i].OID:
			r := rb[j]
			out = append(out, RecordDiff{OID: r.OID, Kind: "only-b", BTID: tid, BSHA256: r.SHA256.String(), BSize: r.Size})
			j++
		default:
			x, y := ra[i], rb[j]
			if x.SHA256 != y.SHA256 || x.Size != y.Size {
				out = append(out, RecordDiff{OID: x.OID, Kind: "data", ATID: tid, ASHA256: x.SHA256.String(), ASize: x.Size,
					BTID: tid, BSHA256: y.SHA256.String(), BSize: y.Size})
			}
			i++
			j++
		}
	}
	return out
}

func (o *options) printDiff(rep *DiffReport) error {
	if o.json {
		return writeJSON(o.stdout, rep)
	}
	w := o.stdout
	fmt.Fprintf(w, "A = %s (%s), last TID %s\nB = %s (%s), last TID %s\n",
		rep.A.Name, rep.A.Node, rep.A.LastTID, rep.B.Name, rep.B.Node, rep.B.LastTID)
	if rep.First == nil {
		fmt.Fprintf(w, "history: identical up to %s (%d chain requests)\n", rep.CommonTID, rep.Requests)
	} else {
		if err := printFirst(w, rep); err != nil {
			return err
		}
	}
	if err := printState(w, rep.State); err != nil {
		return err
	}
	if rep.Identical {
		_, err := fmt.Fprintln(w, "identical")
		return err
	}
	_, err := fmt.Fprintln(w, "DIFFERENT")
	return err
}

func printFirst(w io.Writer, rep *DiffReport) error {
	f := rep.First
	fmt.Fprintf(w, "history: agrees up to %s; first difference at TID %s (%s), found in %d chain requests\n",
		rep.CommonTID, f.TID, tidTime(f.TID), rep.Requests)
	switch f.Kind {
	case "only-a":
		fmt.Fprintf(w, "  transaction %s is on A (%s) only\n", f.TID, rep.A.Name)
	case "only-b":
		fmt.Fprintf(w, "  transaction %s is on B (%s) only\n", f.TID, rep.B.Name)
	default:
		fmt.Fprintf(w, "  transaction %s differs\n", f.TID)
	}
	if rep.Prefix {
		fmt.Fprintln(w, "  the other node's history is a prefix of this one: it is behind, or never had these transactions")
	}
	for _, m := range f.Metadata {
		fmt.Fprintf(w, "  %s: A %q, B %q\n", m.Field, m.A, m.B)
	}
	tw := newTable(w)
	tw.row("  OID\tDIFFERENCE\tA TID\tA SHA256\tB TID\tB SHA256\t")
	for _, r := range f.Records {
		what := map[string]string{"only-a": "only on A", "only-b": "only on B", "data": "data differs"}[r.Kind]
		tw.row("  %s\t%s\t%s\t%s\t%s\t%s\t", r.OID, what, tidOrDash(r.ATID), shortHex(r.ASHA256), tidOrDash(r.BTID), shortHex(r.BSHA256))
	}
	return tw.flush()
}

func tidOrDash(t storage.TID) string {
	if t == 0 {
		return "-"
	}
	return t.String()
}

func shortHex(s string) string {
	if len(s) < 16 {
		return "-"
	}
	return s[:16] + "…"
}
