package clientproto

import (
	"errors"
	"fmt"

	"github.com/repld/repld/storage"
	"github.com/repld/repld/wire"
)

// ErrBehind: the node stayed behind the TID a read needed for as long as it
// waits (wire.ClientErrBehind); the client reads from another node.
var ErrBehind = errors.New("clientproto: node behind the requested TID")

// codePair is an error code and the sentinel it stands for.
type codePair struct {
	code wire.ClientErrorCode
	err  error
}

// codes returns every error code with its sentinel.
func codes() []codePair {
	return []codePair{
		{wire.ClientErrConflict, storage.ErrConflict},
		{wire.ClientErrNotFound, storage.ErrNotFound},
		{wire.ClientErrReadOnly, storage.ErrReadOnly},
		{wire.ClientErrTIDOrder, storage.ErrTIDOrder},
		{wire.ClientErrChainMismatch, storage.ErrChainMismatch},
		{wire.ClientErrTooLarge, storage.ErrTooLarge},
		{wire.ClientErrTxnState, storage.ErrTxnState},
		{wire.ClientErrClosed, storage.ErrClosed},
		{wire.ClientErrBehind, ErrBehind},
	}
}

// ErrorMessage returns the CError answering request id with err.
func ErrorMessage(id uint64, err error) *wire.CError {
	m := &wire.CError{ID: id, Code: wire.ClientErrOther, Text: err.Error()}
	var ce *storage.ConflictError
	if errors.As(err, &ce) {
		m.Code, m.OID, m.Expected, m.Actual = wire.ClientErrConflict, uint64(ce.OID), uint64(ce.Expected), uint64(ce.Actual)
		return m
	}
	for _, c := range codes() {
		if errors.Is(err, c.err) {
			m.Code = c.code
			break
		}
	}
	return m
}

// Error returns the error m stands for: a *storage.ConflictError for a
// conflict, otherwise an error with the server's text that matches the
// code's sentinel with errors.Is (none for ClientErrOther and unknown
// codes).
func Error(m *wire.CError) error {
	if m.Code == wire.ClientErrConflict {
		return &storage.ConflictError{OID: storage.OID(m.OID), Expected: storage.TID(m.Expected), Actual: storage.TID(m.Actual)}
	}
	for _, c := range codes() {
		if c.code == m.Code {
			return &remoteError{text: m.Text, sentinel: c.err}
		}
	}
	return &remoteError{text: fmt.Sprintf("%s (code %d)", m.Text, uint64(m.Code))}
}

// remoteError is an error the server reported, matching its sentinel.
type remoteError struct {
	text     string
	sentinel error
}

func (e *remoteError) Error() string { return "server: " + e.text }

func (e *remoteError) Unwrap() error { return e.sentinel }
