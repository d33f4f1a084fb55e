package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/repld/repld/storage"
)

// DefaultWatchInterval is how often status --watch refreshes.
const DefaultWatchInterval = 2 * time.Second

// statusRow is one node in status output; the JSON is a stable contract.
type statusRow struct {
	Node  string `json:"node"`
	Name  string `json:"name"`
	Role  string `json:"role"`
	Epoch uint64 `json:"epoch"`
	// State: "serving" for a primary; live, catching-up, quarantined or
	// disconnected for a replica ("quarantined" also when only the primary
	// has quarantined it); "unreachable" when the node did not answer
	// (Error says why).
	State    string      `json:"state"`
	LastTID  storage.TID `json:"last_tid"`
	LastTime *time.Time  `json:"last_time"`
	// LagTransactions comes from the primary's registry; null when no
	// primary answered or it does not know the replica.
	LagTransactions  *uint64  `json:"lag_transactions"`
	LagSeconds       float64  `json:"lag_seconds"`
	QuarantineReason string   `json:"quarantine_reason"`
	CatchUp          *CatchUp `json:"catch_up,omitempty"`
	Error            string   `json:"error,omitempty"`
}

// statusSummary counts the nodes by state.
type statusSummary struct {
	Nodes          int         `json:"nodes"`
	Unreachable    int         `json:"unreachable"`
	Primaries      int         `json:"primaries"`
	Replicas       int         `json:"replicas"`
	Live           int         `json:"live"`
	CatchingUp     int         `json:"catching_up"`
	Quarantined    int         `json:"quarantined"`
	Disconnected   int         `json:"disconnected"`
	PrimaryLastTID storage.TID `json:"primary_last_tid"`
	Text           string      `json:"text"`
}

type statusReport struct {
	Nodes   []statusRow   `json:"nodes"`
	Summary statusSummary `json:"summary"`
}

func newStatusCmd(o *options) *cobra.Command {
	var watch bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "One row per node: role, epoch, state, last TID, lag, quarantine",
		Long: `status reads every node's /status and prints one row per node (name, role,
epoch, state, last TID and its time, lag in transactions and seconds,
quarantine reason) and a summary line. Lag in transactions comes from the
primary's registry. An unreachable node is shown as such and makes the exit
status 2 (except with --watch, which keeps refreshing until interrupted).`,
		Example: `  replctl --nodes 127.0.0.1:7101,127.0.0.1:7102 status
  replctl status --json | jq '.nodes[] | select(.state != "live")'
  replctl status --watch --interval 1s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval <= 0 {
				return fmt.Errorf("--interval %v: use a positive duration such as 2s", interval)
			}
			if !watch {
				return o.statusOnce(cmd.Context())
			}
			return o.watchStatus(cmd.Context(), interval)
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "refresh until interrupted")
	cmd.Flags().DurationVar(&interval, "interval", DefaultWatchInterval, "refresh interval of --watch")
	return cmd
}

func (o *options) statusOnce(ctx context.Context) error {
	rep := buildStatus(fetchStatus(ctx, o.clients()))
	if err := o.printStatus(rep); err != nil {
		return err
	}
	if rep.Summary.Unreachable > 0 {
		var msgs []string
		for _, r := range rep.Nodes {
			if r.Error != "" {
				msgs = append(msgs, r.Error)
			}
		}
		return fmt.Errorf("%d of %d nodes did not answer: %s", rep.Summary.Unreachable, rep.Summary.Nodes, strings.Join(msgs, "; "))
	}
	return nil
}

func (o *options) watchStatus(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		rep := buildStatus(fetchStatus(ctx, o.clients()))
		if ctx.Err() != nil {
			return nil
		}
		if o.terminal && !o.json {
			fmt.Fprint(o.stdout, "\033[H\033[2J") // home and clear: redraw in place
		}
		if !o.json {
			fmt.Fprintf(o.stdout, "%s  (every %v; Ctrl-C to stop)\n", time.Now().UTC().Format(time.DateTime), interval)
		}
		if err := o.printStatus(rep); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func buildStatus(views []*nodeView) statusReport {
	p := primaryOf(views)
	rep := statusReport{Nodes: make([]statusRow, 0, len(views))}
	s := &rep.Summary
	s.Nodes = len(views)
	if p != nil {
		s.PrimaryLastTID = p.st.LastTID
	}
	for _, v := range views {
		row := statusRow{Node: v.c.node}
		if v.err != nil {
			row.Name, row.State, row.Error = v.c.node, "unreachable", v.err.Error()
			s.Unreachable++
			rep.Nodes = append(rep.Nodes, row)
			continue
		}
		st := v.st
		row.Name, row.Role, row.Epoch, row.LastTID = st.Name, st.Role, st.Epoch, st.LastTID
		row.LagSeconds, row.CatchUp = st.LagSeconds, st.CatchUp
		if st.LastTID != 0 {
			t := st.LastTID.Time()
			row.LastTime = &t
		}
		if st.Quarantine != nil {
			row.QuarantineReason = st.Quarantine.Reason
		}
		if st.Role == "primary" {
			s.Primaries++
			row.State = "serving"
			zero := uint64(0)
			row.LagTransactions = &zero
		} else {
			s.Replicas++
			row.State = st.State
			if e := registryEntry(p, st.Name); e != nil {
				lag := e.LagTransactions
				row.LagTransactions = &lag
				// A replica the primary quarantined (divergent at hello)
				// may not know it yet: the primary's word counts.
				// Its catch-up is then going nowhere.
				if e.State == "quarantined" {
					row.State, row.CatchUp = "quarantined", nil
				}
				if row.QuarantineReason == "" && e.Quarantine != nil {
					row.QuarantineReason = e.Quarantine.Reason
				}
			}
			switch row.State {
			case "live":
				s.Live++
			case "catching-up":
				s.CatchingUp++
			case "quarantined":
				s.Quarantined++
			default:
				s.Disconnected++
			}
		}
		rep.Nodes = append(rep.Nodes, row)
	}
	s.Text = summaryText(s)
	return rep
}

func summaryText(s *statusSummary) string {
	parts := []string{fmt.Sprintf("%d nodes", s.Nodes)}
	switch s.Primaries {
	case 0:
		parts = append(parts, "NO PRIMARY")
	case 1:
		parts = append(parts, "1 primary")
	default:
		parts = append(parts, fmt.Sprintf("%d PRIMARIES", s.Primaries))
	}
	parts = append(parts, fmt.Sprintf("%d live, %d catching up, %d quarantined, %d disconnected", s.Live, s.CatchingUp, s.Quarantined, s.Disconnected))
	if s.Unreachable > 0 {
		parts = append(parts, fmt.Sprintf("%d UNREACHABLE", s.Unreachable))
	}
	if s.Primaries > 0 {
		parts = append(parts, "primary at "+s.PrimaryLastTID.String())
	}
	return strings.Join(parts, "; ")
}

func (o *options) printStatus(rep statusReport) error {
	if o.json {
		return writeJSON(o.stdout, rep)
	}
	tw := newTable(o.stdout)
	tw.row("NAME\tROLE\tEPOCH\tSTATE\tLAST TID\tLAST TIME (UTC)\tLAG TXNS\tLAG SECS\tQUARANTINE")
	for _, r := range rep.Nodes {
		if r.Error != "" {
			tw.row("%s\t-\t-\tunreachable\t-\t-\t-\t-\t%s", r.Name, r.Error)
			continue
		}
		last, when := "-", "-"
		if r.LastTime != nil {
			last, when = r.LastTID.String(), r.LastTime.Format("2006-01-02 15:04:05.000")
		}
		lag := "?"
		if r.LagTransactions != nil {
			lag = fmt.Sprint(*r.LagTransactions)
		}
		state := r.State
		if r.CatchUp != nil {
			state += fmt.Sprintf(" (%s of %s)", r.CatchUp.DoneTID, r.CatchUp.TargetTID)
		}
		q := r.QuarantineReason
		if q == "" {
			q = "-"
		}
		tw.row("%s\t%s\t%d\t%s\t%s\t%s\t%s\t%.3f\t%s", r.Name, r.Role, r.Epoch, state, last, when, lag, r.LagSeconds, q)
	}
	if err := tw.flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(o.stdout, rep.Summary.Text)
	return err
}

// writeJSON prints v as indented JSON, the form every --json output takes.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// table aligns columns like text/tabwriter and drops the padding it leaves
// at the end of lines.
type table struct {
	buf bytes.Buffer
	tw  *tabwriter.Writer
	out io.Writer
}

func newTable(out io.Writer) *table {
	t := &table{out: out}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 0, 2, ' ', 0)
	return t
}

func (t *table) row(format string, args ...any) { fmt.Fprintf(t.tw, format+"\n", args...) }

func (t *table) flush() error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	var out bytes.Buffer
	for line := range strings.Lines(t.buf.String()) {
		out.WriteString(strings.TrimRight(line, " \n"))
		out.WriteByte('\n')
	}
	_, err := t.out.Write(out.Bytes())
	return err
}
