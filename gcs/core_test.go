package gcs

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// TestCoordCore replays testdata/coord_*.txt against the coordinator's
// deterministic core. Commands (m= names a member by the node name it
// joined with; at= is a time in milliseconds):
//
//	join name=a [win=N] [winbytes=N] [at=T]   a node joins
//	connect m=a | disconnect m=a at=T         its link comes up / goes down
//	send [from=a] [to=b] size=N               a message from the coordinator
//	                                          (or relayed from a), multicast
//	                                          or to one member; prints the
//	                                          members whose window blocks it
//	evict m=a                                 the slow-member timeout fired
//	write m=a                                 a's link writes what is due
//	ack m=a seq=N                             a acknowledges
//	resume m=a delivered=N                    a comes back on a new link
//	tick at=T                                 the failure-timeout clock
//	state                                     every member's session
//
// After each command the script shows the coordinator's own events and the
// members removed.
func TestCoordCore(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		if !strings.HasPrefix(path[strings.LastIndex(path, "/")+1:], "coord_") {
			return
		}
		var (
			out      strings.Builder
			sessions uint64
			c        *coordCore
			byName   map[string]*coreMember
		)
		reset := func() {
			cfg := DefaultConfig("p")
			cfg.FailureTimeout = 100 * time.Millisecond
			cfg.WindowMessages, cfg.WindowBytes = 4, 1000
			sessions = 0
			byName = map[string]*coreMember{}
			c = newCoordCore("p", 300, cfg, func() uint64 { sessions++; return sessions * 100 }, func(ev Event) {
				fmt.Fprintf(&out, "p: %v\n", ev)
			})
		}
		reset()
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			out.Reset()
			at := time.Unix(0, 0)
			if d.HasArg("at") {
				var ms int
				d.ScanArgs(t, "at", &ms)
				at = at.Add(time.Duration(ms) * time.Millisecond)
			}
			member := func(key string) *coreMember {
				var name string
				d.ScanArgs(t, key, &name)
				m := byName[name]
				if m == nil {
					t.Fatalf("%s: no member %q", d.Pos, name)
				}
				return m
			}
			switch d.Cmd {
			case "reset":
				reset()
			case "join":
				var name string
				win, winBytes := 1000, 1<<20
				d.ScanArgs(t, "name", &name)
				d.MaybeScanArgs(t, "win", &win)
				d.MaybeScanArgs(t, "winbytes", &winBytes)
				m, code := c.join(name, win, winBytes, at)
				if code != 0 {
					fmt.Fprintf(&out, "refused: %v\n", byeErr(code))
					break
				}
				byName[name] = m
				fmt.Fprintf(&out, "joined %s session %d window %d/%d\n", m.id, m.session, m.winMsgs, m.winBytes)
			case "connect":
				c.connect(member("m"))
			case "disconnect":
				c.disconnect(member("m"), at)
			case "send":
				var size int
				d.ScanArgs(t, "size", &size)
				var from, dest *coreMember
				origin := c.self
				if d.HasArg("from") {
					from = member("from")
					origin = from.id
				}
				var destID MemberID
				if d.HasArg("to") {
					dest = member("to")
					destID = dest.id
				}
				targets := c.order
				if dest != nil {
					targets = []*coreMember{dest}
				}
				var blocked []string
				for _, m := range targets {
					if m != from && c.blocked(m, size) {
						blocked = append(blocked, string(m.id))
					}
				}
				if len(blocked) > 0 {
					fmt.Fprintf(&out, "blocked by %s\n", strings.Join(blocked, " "))
					break
				}
				p := newPayload(origin, destID, [][]byte{make([]byte, size)}, size)
				for _, m := range targets {
					if m != from {
						fmt.Fprintf(&out, "%s: seq %d\n", m.id, m.out.push(p))
					}
				}
			case "evict":
				c.evict(member("m"))
			case "write":
				m := member("m")
				for m.out.pending() {
					p := m.out.q.at(int(m.out.written - m.out.base))
					switch p.kind {
					case frameView:
						fmt.Fprintf(&out, "%d: view %d %v\n", m.out.written, p.view.ID, p.view.Members)
					case frameData:
						fmt.Fprintf(&out, "%d: data from %s to %q, %d bytes\n", m.out.written, p.origin, p.dest, p.size)
					}
					m.out.written++
				}
				if m.bye != 0 {
					fmt.Fprintf(&out, "bye: %v\n", byeErr(m.bye))
				}
			case "ack":
				var seq uint64
				d.ScanArgs(t, "seq", &seq)
				freed, err := c.ack(member("m"), seq)
				fmt.Fprintf(&out, "freed %v err %v\n", freed, err)
			case "resume":
				m := member("m")
				var delivered uint64
				d.ScanArgs(t, "delivered", &delivered)
				got, code, err := c.resume(m.session, delivered)
				switch {
				case code != 0:
					fmt.Fprintf(&out, "refused: %v (err %v)\n", byeErr(code), err)
				default:
					c.connect(got)
					fmt.Fprintf(&out, "resumed %s: writing from %d\n", got.id, got.out.written)
				}
			case "tick":
				c.tick(at)
			case "state":
				fmt.Fprintf(&out, "view %d %v\n", c.view.ID, c.view.Members)
				for _, m := range c.order {
					fmt.Fprintf(&out, "%v, %d bytes unacked\n", m, m.out.bytes)
				}
			default:
				t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
			}
			for _, m := range c.removed {
				fmt.Fprintf(&out, "removed %s: %v\n", m.id, byeErr(m.bye))
			}
			c.removed = c.removed[:0]
			if out.Len() == 0 {
				return "ok"
			}
			return out.String()
		})
	})
}
