package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// nodeView is one node of --nodes and what its /status said.
type nodeView struct {
	c   *client
	st  *NodeStatus
	err error
}

// name is the node's reported name, or its address when unreachable.
func (v *nodeView) name() string {
	if v.st != nil {
		return v.st.Name
	}
	return v.c.node
}

// fetchStatus reads every node's /status concurrently.
func fetchStatus(ctx context.Context, cs []*client) []*nodeView {
	views := make([]*nodeView, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		views[i] = &nodeView{c: c}
		wg.Go(func() { views[i].st, views[i].err = c.status(ctx) })
	}
	wg.Wait()
	return views
}

// reachable returns the views that answered, or the first error if any
// did not: commands that compare nodes need every one of them.
func reachable(views []*nodeView) error {
	var errs []error
	for _, v := range views {
		if v.err != nil {
			errs = append(errs, v.err)
		}
	}
	return errors.Join(errs...)
}

// findNode picks the node an operator named by admin address or by name.
func findNode(views []*nodeView, arg string) (*nodeView, error) {
	for _, v := range views {
		if v.c.node == arg {
			if v.err != nil {
				return nil, v.err
			}
			return v, nil
		}
	}
	var names, matches []string
	var found *nodeView
	for _, v := range views {
		if v.st != nil {
			if v.st.Name == arg {
				found = v
				matches = append(matches, v.c.node)
			}
			names = append(names, v.st.Name)
		}
	}
	switch {
	case len(matches) == 1:
		return found, nil
	case len(matches) > 1:
		return nil, fmt.Errorf("nodes %s are all named %q; name one by its admin address", strings.Join(matches, ", "), arg)
	}
	if err := reachable(views); err != nil {
		return nil, fmt.Errorf("no reachable node is named %q, and some nodes did not answer: %w", arg, err)
	}
	return nil, fmt.Errorf("no node in --nodes has address or name %q; the nodes are %s", arg, strings.Join(names, ", "))
}

// primaryOf is the reachable primary with the highest epoch, nil if none.
func primaryOf(views []*nodeView) *nodeView {
	var p *nodeView
	for _, v := range views {
		if v.st != nil && v.st.Role == "primary" && (p == nil || v.st.Epoch > p.st.Epoch) {
			p = v
		}
	}
	return p
}

// registryEntry is the primary's record of the replica called name.
func registryEntry(p *nodeView, name string) *RegistryEntry {
	if p == nil {
		return nil
	}
	for i := range p.st.Replicas {
		if p.st.Replicas[i].Name == name {
			return &p.st.Replicas[i]
		}
	}
	return nil
}
