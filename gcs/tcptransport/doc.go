// Package tcptransport is the TCP stream layer under a gcs.Node, with
// optional mutual TLS. A Layer is a net.Listener plus Dial, as
// gcs.StreamLayer expects (the shape of hashicorp/raft's StreamLayer); the
// package imports only the standard library and not gcs.
//
// # Connections
//
// Every connection, accepted or dialed, gets the configured TCP options
// (NoDelay, KeepAlive, socket buffer sizes). Dial is bounded by its context
// and by Config.DialTimeout, which covers the TCP connect and, with TLS, the
// whole client handshake. Closing a Layer stops Accept and aborts Dial calls
// in progress; established connections stay open, as with net.Listener.
//
// # TLS
//
// With Config.TLS set, both sides use TLS 1.3 only. The dialing side
// verifies the server's certificate against TLSConfig.RootCAs and the dialed
// host (an IP SAN for an IP address) and, when the server asks, presents its
// own certificate. With TLSConfig.MutualAuth the serving side requires a
// client certificate and verifies it against TLSConfig.ClientCAs
// (tls.RequireAndVerifyClientCert). LoadTLSConfig builds such a TLSConfig from
// PEM files, one CA file serving both pools.
//
// Where the handshake runs: Dial completes the client handshake before it
// returns, so a bad server certificate fails Dial. Accept returns at once,
// without handshaking, so one slow or silent client never holds up the
// others; the server handshake runs on the connection's first Read or Write
// (or an explicit HandshakeContext), bounded by Config.HandshakeTimeout.
// Handshake failures wrap ErrHandshake and say which side failed, with which
// peer, and what was wrong with which certificate. In TLS 1.3 the server
// verifies the client certificate after the client considers the handshake
// done, so a client whose certificate is rejected learns it on its first
// Read, as an error naming the peer's alert.
package tcptransport
