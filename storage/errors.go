package storage

import (
	"errors"
	"fmt"
)

// Errors callers branch on with errors.Is. Implementations wrap them with
// the operation and its arguments.
var (
	// ErrConflict: a Store's serial was not the object's current TID. Vote
	// returns a *ConflictError that matches it.
	ErrConflict = errors.New("storage: conflict")
	// ErrNotFound: no such object, revision or transaction (ZODB's
	// POSKeyError). Also returned for revisions that Pack removed.
	ErrNotFound = errors.New("storage: not found")
	// ErrReadOnly: the storage does not accept writes (a replica's view).
	ErrReadOnly = errors.New("storage: read-only")
	// ErrClosed: the storage, or the transaction's storage, was closed.
	ErrClosed = errors.New("storage: closed")
	// ErrTxnState: a transaction method was called out of order (Store after
	// Vote, Finish before Vote, anything after Finish or Abort).
	ErrTxnState = errors.New("storage: transaction method called in the wrong state")
	// ErrTIDOrder: FinishAt was given a TID not greater than the last
	// committed one.
	ErrTIDOrder = errors.New("storage: TID not greater than the last transaction")
	// ErrChainMismatch: FinishAt computed a chain checksum other than the
	// one the caller expected; nothing was committed.
	ErrChainMismatch = errors.New("storage: chain checksum mismatch")
	// ErrTooLarge: an object or transaction exceeds a configured limit;
	// reported by Vote.
	ErrTooLarge = errors.New("storage: too large")
)

// ConflictError reports a write conflict on one object: the transaction
// stored OID expecting serial Expected, but the current revision is Actual
// (0: the object does not exist).
type ConflictError struct {
	OID      OID
	Expected TID
	Actual   TID
}

// Error describes the conflict.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("storage: conflict on OID %s: stored with serial %s, current is %s", e.OID, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }
