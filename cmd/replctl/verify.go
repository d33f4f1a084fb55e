package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/repld/repld/storage"
)

// ChainNode is one node's history as verify compares it.
type ChainNode struct {
	Node    string      `json:"node"`
	Name    string      `json:"name"`
	LastTID storage.TID `json:"last_tid"`
	// TID and Chain are the node's newest transaction at or before the
	// common TID and its chain value.
	TID    storage.TID      `json:"tid"`
	Chain  storage.Checksum `json:"chain"`
	Agrees bool             `json:"agrees"`
	// Reason says why a node disagrees.
	Reason string `json:"reason,omitempty"`
}

// VerifyReport is verify's output; the JSON is a stable contract.
type VerifyReport struct {
	Consistent bool `json:"consistent"`
	// Reference is the node that wins ties: the primary with the highest
	// epoch, or the first node.
	Reference string `json:"reference"`
	// CommonTID is the newest TID every node has (the lowest last TID).
	CommonTID   storage.TID  `json:"common_tid"`
	Chains      []ChainNode  `json:"chains"`
	State       *StateResult `json:"state"`
	Disagreeing []string     `json:"disagreeing"`
}

func newVerifyCmd(o *options) *cobra.Command {
	maxObjects := DefaultMaxObjects
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Prove the nodes consistent, or name those that disagree",
		Long: `verify compares every node's chain value at the newest TID they all have
(the chain covers the whole history up to it), checks that a node ahead of
the primary holds nothing the primary lacks, then compares the nodes'
current state at that TID with a hash tree over OID ranges: equal ranges
cost one digest each, and only differing ranges are split further, down to
the objects that differ.

Exit status 0 and "consistent" when all nodes agree; 1 with the disagreeing
nodes, transactions and objects otherwise; 2 when a node cannot be read.
When the nodes split evenly, the reference node (the primary) wins.`,
		Example: `  replctl --nodes 127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103 verify
  replctl verify --json | jq .disagreeing`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if maxObjects <= 0 {
				return fmt.Errorf("--max-objects %d: use a positive count", maxObjects)
			}
			rep, err := verify(cmd.Context(), o.clients(), maxObjects)
			if err != nil {
				return err
			}
			if err := o.printVerify(rep); err != nil {
				return err
			}
			if !rep.Consistent {
				return errInconsistent
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&maxObjects, "max-objects", maxObjects, "stop after this many differing objects")
	return cmd
}

func verify(ctx context.Context, cs []*client, maxObjects int) (*VerifyReport, error) {
	views := fetchStatus(ctx, cs)
	if err := reachable(views); err != nil {
		return nil, err
	}
	ref := 0
	if p := primaryOf(views); p != nil {
		ref = slices.Index(views, p)
	}
	names := make([]string, len(views))
	rep := &VerifyReport{Reference: views[ref].name(), CommonTID: views[0].st.LastTID, Disagreeing: []string{}}
	for i, v := range views {
		names[i] = v.name()
		rep.CommonTID = min(rep.CommonTID, v.st.LastTID)
	}
	rep.Chains = make([]ChainNode, len(views))
	err := each(cs, func(i int, c *client) error {
		p, err := c.chainBefore(ctx, rep.CommonTID)
		rep.Chains[i] = ChainNode{Node: c.node, Name: names[i], LastTID: views[i].st.LastTID, TID: p.TID, Chain: p.Chain}
		return err
	})
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(views))
	for i, ch := range rep.Chains {
		keys[i] = ch.TID.String() + ch.Chain.String()
	}
	disagree := map[int]bool{}
	for i, ok := range majority(keys, ref) {
		rep.Chains[i].Agrees = ok
		if !ok {
			disagree[i] = true
			rep.Chains[i].Reason = fmt.Sprintf("history differs at or before %s", rep.CommonTID)
		}
	}
	// A node ahead of the common TID is normal (the others lag), unless it
	// holds a transaction the primary lacks or has differently.
	if views[ref].st.Role == "primary" {
		err = each(cs, func(i int, _ *client) error {
			ch := &rep.Chains[i]
			if i == ref || !ch.Agrees || ch.LastTID <= rep.CommonTID {
				return nil
			}
			p, err := cs[ref].chainAt(ctx, ch.LastTID)
			switch {
			case errors.Is(err, errNotFound):
				ch.Reason = fmt.Sprintf("holds transaction %s that primary %s lacks", ch.LastTID, names[ref])
			case err != nil:
				return err
			default:
				cur, err := cs[i].chainAt(ctx, ch.LastTID)
				if err != nil {
					return err
				}
				if cur.Chain == p.Chain {
					return nil
				}
				ch.Reason = fmt.Sprintf("history differs from primary %s at or before %s", names[ref], ch.LastTID)
			}
			ch.Agrees = false
			return nil
		})
		if err != nil {
			return nil, err
		}
		for i, ch := range rep.Chains {
			if !ch.Agrees {
				disagree[i] = true
			}
		}
	}
	ats := make([]storage.TID, len(cs))
	for i := range ats {
		ats[i] = rep.CommonTID
	}
	state, sd, err := compareState(ctx, cs, names, ref, ats, maxObjects)
	if err != nil {
		return nil, err
	}
	rep.State = state
	for i := range sd {
		disagree[i] = true
	}
	for i := range views {
		if disagree[i] {
			rep.Disagreeing = append(rep.Disagreeing, names[i])
		}
	}
	rep.Consistent = len(rep.Disagreeing) == 0
	return rep, nil
}

func (o *options) printVerify(rep *VerifyReport) error {
	if o.json {
		return writeJSON(o.stdout, rep)
	}
	w := o.stdout
	fmt.Fprintf(w, "history: chain values at the common TID %s (%s)\n", rep.CommonTID, tidTime(rep.CommonTID))
	tw := newTable(w)
	tw.row("  NODE\tLAST TID\tTID\tCHAIN\tVERDICT")
	for _, c := range rep.Chains {
		verdict := "ok"
		if !c.Agrees {
			verdict = "DIFFERS: " + c.Reason
		}
		tw.row("  %s\t%s\t%s\t%s…\t%s", c.Name, c.LastTID, c.TID, c.Chain.String()[:16], verdict)
	}
	if err := tw.flush(); err != nil {
		return err
	}
	if err := printState(w, rep.State); err != nil {
		return err
	}
	if rep.Consistent {
		fmt.Fprintf(w, "consistent: %d nodes agree on the history up to %s and on %d objects\n", len(rep.Chains), rep.CommonTID, rep.State.Objects)
		return nil
	}
	_, err := fmt.Fprintf(w, "INCONSISTENT: differing from the majority (ties: %s): %s\n", rep.Reference, strings.Join(rep.Disagreeing, ", "))
	return err
}

func printState(w io.Writer, s *StateResult) error {
	at := s.At[0].String()
	if !allEqualTIDs(s.At) {
		at = fmt.Sprint(s.At)
	}
	fmt.Fprintf(w, "state at %s: %d objects, hash tree walked in %d requests", at, s.Objects, s.Requests)
	if len(s.Diffs) == 0 {
		_, err := fmt.Fprintln(w, ", all equal")
		return err
	}
	fmt.Fprintf(w, ", %d object(s) differ", len(s.Diffs))
	if s.Truncated {
		fmt.Fprint(w, " (stopped at --max-objects; more differ)")
	}
	fmt.Fprintln(w)
	tw := newTable(w)
	tw.row("  OID\tNODE\tSERIAL\tSHA256\tSIZE\t")
	for _, d := range s.Diffs {
		for _, n := range d.Nodes {
			mark := ""
			if !n.Agrees {
				mark = "<- differs"
			}
			if !n.Present {
				tw.row("  %s\t%s\t(missing)\t\t\t%s", d.OID, n.Node, mark)
				continue
			}
			tw.row("  %s\t%s\t%s\t%s…\t%d\t%s", d.OID, n.Node, n.Serial, n.SHA256[:16], n.Size, mark)
		}
	}
	return tw.flush()
}

// tidTime formats a TID's time for people; "none" for TID 0.
func tidTime(t storage.TID) string {
	if t == 0 {
		return "none"
	}
	return t.Time().Format("2006-01-02 15:04:05.000000 UTC")
}

func allEqualTIDs(ts []storage.TID) bool {
	for _, t := range ts {
		if t != ts[0] {
			return false
		}
	}
	return true
}
