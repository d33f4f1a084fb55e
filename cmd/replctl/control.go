package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/repld/repld/storage"
)

// Defaults of the wait after release and resync.
const (
	DefaultWaitTimeout  = 30 * time.Minute
	DefaultPollInterval = 500 * time.Millisecond
)

// ControlReport is the JSON output of quarantine, release, resync and
// promote: what was asked of which node and what it answered.
type ControlReport struct {
	Action string `json:"action"`
	Node   string `json:"node"`
	Name   string `json:"name"`
	// Steps are the requests made, in order, with the nodes' answers.
	Steps []Step `json:"steps"`
	// Final is the node's status at the end (after the wait, if any).
	Final *NodeStatus `json:"final,omitempty"`
	// log, when set (table output), gets each step as it is answered, so
	// a person sees what was done even if a later step fails.
	log io.Writer
}

// newControlReport starts the report of action on the replica name at
// admin address node.
func (o *options) newControlReport(action, node, name string) *ControlReport {
	rep := &ControlReport{Action: action, Node: node, Name: name}
	if !o.json {
		rep.log = o.stdout
	}
	return rep
}

// Step is one control request.
type Step struct {
	Node    string          `json:"node"`
	Request string          `json:"request"`
	Answer  json.RawMessage `json:"answer,omitempty"`
	Error   string          `json:"error,omitempty"`
}

func (r *ControlReport) step(ctx context.Context, c *client, path string, body any) error {
	ans, err := c.post(ctx, path, body)
	s := Step{Node: c.node, Request: "POST " + path, Answer: ans}
	if err != nil {
		s.Error = err.Error()
	}
	r.Steps = append(r.Steps, s)
	if r.log != nil {
		res := "ok"
		if s.Error != "" {
			res = "FAILED: " + s.Error
		} else if did := answerDid(s.Answer); did != "" {
			res = "ok, " + did
		}
		fmt.Fprintf(r.log, "%s %s: %s\n", s.Node, s.Request, res)
	}
	return err
}

func nodeCompletion(o *options) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return o.nodes, cobra.ShellCompDirectiveNoFileComp
	}
}

// replicaTarget resolves a replica named on the command line.
func replicaTarget(views []*nodeView, arg string) (*nodeView, error) {
	v, err := findNode(views, arg)
	if err != nil {
		return nil, err
	}
	if v.st.Role != "replica" {
		return nil, fmt.Errorf("%s (%s) is a %s; this command acts on replicas", v.name(), v.c.node, v.st.Role)
	}
	return v, nil
}

func newQuarantineCmd(o *options) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "quarantine NODE --reason TEXT",
		Short: "Stop a replica applying and record why",
		Long: `quarantine tells a replica to quarantine itself: it persists the marker
with the reason, stops applying and reports it to the primary, which stops
counting it for sync. When the replica does not answer, the primary records
the quarantine (NODE must then be the replica's name).`,
		Example:           `  replctl quarantine r1 --reason "disk being replaced"`,
		Args:              exactArgs(1, "one replica (NODE)"),
		ValidArgsFunction: nodeCompletion(o),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return errors.New("--reason is required: say why, operators read it in status")
			}
			ctx := cmd.Context()
			views := fetchStatus(ctx, o.clients())
			rep := o.newControlReport("quarantine", "", "")
			body := map[string]string{"reason": reason}
			v, err := replicaTarget(views, args[0])
			if err == nil {
				rep.Node, rep.Name = v.c.node, v.name()
				if err := rep.step(ctx, v.c, "/quarantine", body); err != nil {
					return err
				}
				rep.Final, _ = v.c.status(ctx)
				return o.printControl(rep)
			}
			p := primaryOf(views)
			if p == nil || registryEntry(p, args[0]) == nil {
				return err
			}
			rep.Node, rep.Name = p.c.node, args[0]
			if err := rep.step(ctx, p.c, "/replicas/"+url.PathEscape(args[0])+"/quarantine", body); err != nil {
				return err
			}
			return o.printControl(rep)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (shown in status; required)")
	return cmd
}

// waitOptions are the flags of commands that wait for a catch-up.
type waitOptions struct {
	noWait  bool
	timeout time.Duration
	poll    time.Duration
}

func (w *waitOptions) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&w.noWait, "no-wait", false, "return once the node accepted, without waiting for it to catch up")
	cmd.Flags().DurationVar(&w.timeout, "wait-timeout", DefaultWaitTimeout, "give up waiting for the catch-up after this long")
	cmd.Flags().DurationVar(&w.poll, "poll", DefaultPollInterval, "how often to read the replica's status while waiting")
}

func (w *waitOptions) validate() error {
	if w.timeout <= 0 {
		return fmt.Errorf("--wait-timeout %v: use a positive duration such as 30m", w.timeout)
	}
	if w.poll <= 0 {
		return fmt.Errorf("--poll %v: use a positive duration such as 500ms", w.poll)
	}
	return nil
}

func newReleaseCmd(o *options) *cobra.Command {
	return newRejoinCmd(o, "release", "/release",
		"Lift a replica's quarantine; it catches up from its last good TID",
		`release lifts a quarantine: the primary accepts the replica again
(POST /replicas/NAME/release on the primary), then the replica clears its
marker, discards any half-applied transaction and catches up from its last
good TID (POST /release on the replica). replctl then waits until the replica
is live and has reached the primary's last TID at the time of the release.`,
		`  replctl release r1`)
}

func newResyncCmd(o *options) *cobra.Command {
	return newRejoinCmd(o, "resync", "/resync",
		"Replace a replica's data with a fresh copy from the primary",
		`resync makes the primary accept the replica again, then has the replica
wipe its store and catch up from empty (POST /resync). replctl waits until
it is live and has reached the primary's last TID, with a progress bar on a
terminal (elsewhere, a line on standard error at each tenth).`,
		`  replctl resync r1
  replctl resync r1 --no-wait && replctl status --watch`)
}

func newRejoinCmd(o *options, action, path, short, long, example string) *cobra.Command {
	var w waitOptions
	cmd := &cobra.Command{
		Use:               action + " NODE",
		Short:             short,
		Long:              long,
		Example:           example,
		Args:              exactArgs(1, "one replica (NODE)"),
		ValidArgsFunction: nodeCompletion(o),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := w.validate(); err != nil {
				return err
			}
			ctx := cmd.Context()
			views := fetchStatus(ctx, o.clients())
			v, err := replicaTarget(views, args[0])
			if err != nil {
				return err
			}
			p := primaryOf(views)
			if p == nil {
				return fmt.Errorf("no primary among --nodes answered; add the primary's admin address, it must accept %s again", v.name())
			}
			rep := o.newControlReport(action, v.c.node, v.name())
			target := p.st.LastTID
			if err := rep.step(ctx, p.c, "/replicas/"+url.PathEscape(v.name())+"/release", nil); err != nil {
				return err
			}
			if err := rep.step(ctx, v.c, path, nil); err != nil {
				return err
			}
			if !w.noWait {
				if rep.Final, err = o.waitCaughtUp(ctx, v.c, p.c, target, w); err != nil {
					return err
				}
			} else {
				rep.Final, _ = v.c.status(ctx)
			}
			return o.printControl(rep)
		},
	}
	w.add(cmd)
	return cmd
}

// waitCaughtUp polls the replica until it is live at or past target,
// showing its progress (see progress).
func (o *options) waitCaughtUp(ctx context.Context, r, p *client, target storage.TID, w waitOptions) (*NodeStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	var first storage.TID
	if f, err := p.chainAfter(ctx, 0); err == nil {
		first = f.TID
	}
	bar := &progress{out: o.stderr, node: r.node, on: !o.json, terminal: o.terminal, step: -1}
	defer bar.done()
	t := time.NewTicker(w.poll)
	defer t.Stop()
	for {
		st, err := r.status(ctx)
		if err != nil && ctx.Err() != nil {
			return nil, fmt.Errorf("%s did not catch up within --wait-timeout %v (check replctl status)", r.node, w.timeout)
		}
		if err == nil {
			switch {
			case st.State == "quarantined":
				reason := ""
				if st.Quarantine != nil {
					reason = st.Quarantine.Reason
				}
				return st, fmt.Errorf("node %s (%s) was quarantined again while catching up: %s", r.node, st.Name, reason)
			case st.State == "live" && st.LastTID >= target:
				bar.show(1, st.LastTID, target)
				return st, nil
			}
			done, goal := st.LastTID, target
			if st.CatchUp != nil {
				done, goal = st.CatchUp.DoneTID, max(st.CatchUp.TargetTID, target)
			}
			bar.show(fraction(first, done, goal), done, goal)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s did not catch up within --wait-timeout %v (check replctl status)", r.node, w.timeout)
		case <-t.C:
		}
	}
}

// fraction is how far done is from first to goal. TIDs are timestamps, so
// this is progress through the history's time span, not its bytes.
func fraction(first, done, goal storage.TID) float64 {
	if goal <= first || done <= first {
		return 0
	}
	return min(1, float64(done-first)/float64(goal-first))
}

// progress shows a catch-up's progress on standard error: a bar redrawn
// in place on a terminal, elsewhere (a log, a test) a line each time it
// passes another tenth.
type progress struct {
	out      io.Writer
	node     string
	on       bool
	terminal bool
	drawn    bool
	// step is the last tenth printed off a terminal, -1 before the first.
	step int
}

func (b *progress) show(f float64, done, goal storage.TID) {
	switch {
	case !b.on:
	case b.terminal:
		const width = 40
		n := int(f * width)
		fmt.Fprintf(b.out, "\r[%s%s] %3.0f%%  %s of %s", strings.Repeat("#", n), strings.Repeat(".", width-n), f*100, done, goal)
		b.drawn = true
	case int(f*10) > b.step:
		b.step = int(f * 10)
		fmt.Fprintf(b.out, "%s: caught up %3d%%, at %s of %s\n", b.node, int(f*100), done, goal)
	}
}

func (b *progress) done() {
	if b.drawn {
		fmt.Fprintln(b.out)
	}
}

func newPromoteCmd(o *options) *cobra.Command {
	var force bool
	var listen string
	cmd := &cobra.Command{
		Use:   "promote NODE",
		Short: "Make a healthy replica the primary with the next epoch",
		Long: `promote makes a replica the primary (POST /promote): it finishes applying
what it received, then serves as primary with epoch+1 on the same store.
Every other reachable, non-quarantined replica is then told to follow it
(POST /follow). An old primary that comes back is refused by its epoch, and
quarantined as divergent if it holds transactions the new primary lacks;
replctl diff lists them.

Promote the most advanced replica: in applied mode every commit that
returned was applied by at least one replica, in TID order, so the replica
with the highest last TID holds them all. Without --force, promote refuses
when a primary still answers, when NODE is neither live nor disconnected
(catching up or quarantined, it may lack transactions), or when another
replica has applied more (promoting NODE could lose transactions that
replica acknowledged).`,
		Example:           `  replctl --nodes 127.0.0.1:7102,127.0.0.1:7103 promote r1`,
		Args:              exactArgs(1, "one replica (NODE)"),
		ValidArgsFunction: nodeCompletion(o),
		RunE: func(cmd *cobra.Command, args []string) error {
			if listen != "" {
				if _, _, err := net.SplitHostPort(listen); err != nil {
					return fmt.Errorf("--listen %q is not HOST:PORT: %v", listen, err)
				}
			}
			ctx := cmd.Context()
			views := fetchStatus(ctx, o.clients())
			v, err := replicaTarget(views, args[0])
			if err != nil {
				return err
			}
			if !force {
				if err := promotable(views, v); err != nil {
					return fmt.Errorf("%w; pass --force to promote anyway", err)
				}
			}
			rep := o.newControlReport("promote", v.c.node, v.name())
			if err := rep.step(ctx, v.c, "/promote", nil); err != nil {
				return err
			}
			st, err := v.c.status(ctx)
			if err != nil {
				return fmt.Errorf("promoted, but reading its status failed: %w", err)
			}
			rep.Final = st
			if listen == "" {
				listen = promotedListen(rep.Steps[0].Answer, v.c.node)
			}
			followers := 0
			for _, f := range views {
				if f == v || f.st == nil || f.st.Role != "replica" || f.st.State == "quarantined" {
					continue
				}
				followers++
				if listen == "" {
					break
				}
				// A follower that fails is reported; the others still follow.
				_ = rep.step(ctx, f.c, "/follow", map[string]string{"primary": listen})
			}
			if followers > 0 && listen == "" {
				_ = o.printControl(rep)
				return fmt.Errorf("promoted %s, but it did not report its replication address; rerun with --listen HOST:PORT to make the other replicas follow it", v.name())
			}
			if err := o.printControl(rep); err != nil {
				return err
			}
			var failed []string
			for _, s := range rep.Steps[1:] {
				if s.Error != "" {
					failed = append(failed, s.Error)
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("promoted %s, but %d replica(s) did not follow: %s", v.name(), len(failed), strings.Join(failed, "; "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "promote even if a primary answers or another replica is further ahead")
	cmd.Flags().StringVar(&listen, "listen", "", "replication (gcs) address the other replicas follow (default: what the promoted node reports)")
	return cmd
}

// promotable says why v should not be promoted, nil if it may.
func promotable(views []*nodeView, v *nodeView) error {
	if p := primaryOf(views); p != nil {
		return fmt.Errorf("primary %s (%s, epoch %d) still answers; stop it before promoting", p.name(), p.c.node, p.st.Epoch)
	}
	// A replica whose primary failed is disconnected: that is the usual
	// case. One catching up or quarantined may lack transactions.
	if v.st.State != "live" && v.st.State != "disconnected" {
		return fmt.Errorf("%s is %s, not live or disconnected", v.name(), v.st.State)
	}
	for _, o := range views {
		if o != v && o.st != nil && o.st.Role == "replica" && o.st.State != "quarantined" && o.st.LastTID > v.st.LastTID {
			return fmt.Errorf("%s has applied up to %s, further than %s (%s); promote the most advanced replica", o.name(), o.st.LastTID, v.name(), v.st.LastTID)
		}
	}
	return nil
}

// promotedListen finds the new primary's replication (gcs) address in its
// /promote answer, "" if it has none. A node listening on every interface
// reports an unspecified host, which the others cannot dial: the host of
// its admin address stands in for it.
func promotedListen(answer json.RawMessage, adminAddr string) string {
	var a struct {
		Listen string `json:"listen"`
	}
	if json.Unmarshal(answer, &a) != nil || a.Listen == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(a.Listen)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if ahost, _, err := net.SplitHostPort(adminAddr); err == nil {
			return net.JoinHostPort(ahost, port)
		}
	}
	return a.Listen
}

// answerDid is what a node says it did in a control answer (its "did"),
// the rest of the answer being for --json.
func answerDid(answer json.RawMessage) string {
	var a struct {
		Did string `json:"did"`
	}
	if json.Unmarshal(answer, &a) != nil {
		return ""
	}
	return a.Did
}

func (o *options) printControl(rep *ControlReport) error {
	if o.json {
		return writeJSON(o.stdout, rep)
	}
	if st := rep.Final; st != nil {
		q := ""
		if st.Quarantine != nil {
			q = "; " + st.Quarantine.Reason
		}
		state := st.State
		if st.Role == "primary" {
			state = "serving"
		}
		fmt.Fprintf(o.stdout, "%s: %s %s, epoch %d, last TID %s%s\n", rep.Name, st.Role, state, st.Epoch, st.LastTID, q)
	}
	return nil
}
