package gcs

import "errors"

// Sentinel errors. Callers branch on them with errors.Is; the errors the
// package returns wrap them with the operation and the details.
var (
	// ErrClosed: the Node or the Group was closed (or left); nothing more
	// is sent or received through it.
	ErrClosed = errors.New("gcs: closed")

	// ErrMessageTooLarge: a message is larger than Config.MaxMessage. On
	// send nothing was sent; on receive the connection was dropped and
	// nothing of the frame was delivered.
	ErrMessageTooLarge = errors.New("gcs: message too large")

	// ErrProtocol: a peer sent bytes that are not a valid frame, or a valid
	// frame where it is not allowed. The connection is dropped; nothing of
	// the offending frame is delivered.
	ErrProtocol = errors.New("gcs: protocol error")

	// ErrNoSuchGroup: the contact node does not coordinate the named group.
	ErrNoSuchGroup = errors.New("gcs: no such group")

	// ErrGroupExists: Create was called twice for one group name on one Node.
	ErrGroupExists = errors.New("gcs: group already exists on this node")

	// ErrGroupFull: the coordinator cannot add a member because the view
	// would not fit in one frame.
	ErrGroupFull = errors.New("gcs: group full")

	// ErrIncompatible: the peer runs another protocol version or another
	// MaxMessage; every node of a group must use the same.
	ErrIncompatible = errors.New("gcs: incompatible peer")

	// ErrNotMember: a unicast names a member that is not in the current view.
	ErrNotMember = errors.New("gcs: not a member of the view")

	// ErrEvicted is the Err of a notice Event: the coordinator removed this
	// member because it did not keep up with its flow-control window.
	// Messages since the last view may be missing; the member rejoins with
	// a fresh session and receives a new view.
	ErrEvicted = errors.New("gcs: evicted for not keeping up")

	// ErrFellBehind is the Err of a notice Event: while this member was
	// disconnected, more was sent to it than the retransmission buffer
	// holds. Messages are missing (catch up from storage); the member
	// rejoins with a fresh session and receives a new view.
	ErrFellBehind = errors.New("gcs: fell behind the retransmission buffer")

	// ErrRemoved is the Err of a notice Event: the coordinator removed this
	// member (it was unreachable for longer than the failure timeout, or
	// the coordinator no longer knows its session). Messages may be
	// missing; the member rejoins with a fresh session.
	ErrRemoved = errors.New("gcs: removed from the group")

	// ErrCoordinatorLost is the Err of a notice Event: the coordinator has
	// been unreachable for longer than the failure timeout. The member keeps
	// trying to reconnect in the background; Leave or Close to give up.
	ErrCoordinatorLost = errors.New("gcs: coordinator unreachable")

	// ErrGroupClosed is the Err of a notice Event: the coordinator closed
	// the group. It is the last event; Receive then returns ErrClosed.
	ErrGroupClosed = errors.New("gcs: group closed by its coordinator")
)
