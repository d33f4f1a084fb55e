package gcs

import (
	"context"
	"net"
)

// StreamLayer is the network under a Node: a listener plus a dialer, as in hashicorp/raft.
type StreamLayer interface {
	net.Listener
	// Dial opens a stream to the node listening at address.
	Dial(ctx context.Context, address string) (net.Conn, error)
}
