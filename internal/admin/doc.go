// Package admin is the HTTP endpoint every repld node serves for operators
// and tools: the node's status as JSON, a health check, Prometheus metrics,
// chain values and digests for comparing nodes, and the operator's control
// operations. It knows nothing about primaries or replicas: the command that
// runs a node hands it functions reading the node's state and doing its
// control operations, so the same server serves both roles.
//
// # Endpoints
//
//	GET /status        Config.Status() as JSON.
//	GET /healthz       200 "ok" while the node serves and Config.Health reports
//	                   nil; 503 with the reason when Health reports an error (a
//	                   quarantined replica) or once Shutdown has begun, so a load
//	                   balancer stops sending work before the node goes away.
//	GET /metrics       Prometheus text exposition of Config.Gatherer.
//	GET /chain?tid=HEX the node's chain checksum at tid as JSON
//	                   {"tid":"…","chain":"…"}; without tid, at the node's last
//	                   transaction. 404 when the node does not have that TID, 400
//	                   for a malformed one.
//
// The data endpoints, with which replctl compares nodes without copying
// their data (TIDs and OIDs as 16 hex digits; 400 for a malformed
// parameter, 404 for what the node does not have):
//
//	GET /chain/before?tid=HEX  {"tid","chain"}: the newest committed TID <= tid
//	                           (tid 0 and the zero chain if none).
//	GET /chain/after?tid=HEX   the oldest committed TID > tid; 404 if none.
//	GET /txn?tid=HEX           the transaction: tid, chain, user, description,
//	                           extension (base64) and its records as
//	                           {"oid","size","sha256"}; 404 if absent.
//	GET /digest?at=&from=&to=&parts=N
//	                           the state as of snapshot at (default: the last
//	                           transaction; 404 past it) over OIDs [from, to]
//	                           (default: all) split into N equal sub-ranges
//	                           (N <= 4096, fewer if the range is smaller), each
//	                           {"from","to","count","digest"} with digest =
//	                           SHA-256 over oid (8 BE) ‖ serial (8 BE) ‖
//	                           SHA-256(data) of its objects in OID order.
//	GET /objects?at=&from=&to=&limit=N
//	                           the objects of the range as {"oid","serial",
//	                           "sha256","size"}, at most limit (default 1000,
//	                           at most 10000), and "more" when the range
//	                           holds more.
//
// /digest and /objects need a store that is a storage.ObjectLister (501
// otherwise); /status also reports the admin address as "admin".
// Config.CurrentStore replaces Store for a node whose store changes with
// its role.
//
// The control endpoints (POST, JSON bodies of at most 64 KiB with known
// fields only) call Config.Control, which does the work and answers what
// it did as JSON; 400 for a malformed request, 409 when the node cannot
// do it in its state (errors wrapping ErrRefused, with the reason), 404
// for an unknown replica (ErrNotFound), 501 without a Control:
//
//	POST /quarantine {"reason"}         a replica quarantines itself.
//	POST /release                       a replica lifts its quarantine and
//	                                    catches up from its last TID.
//	POST /resync                        a replica replaces its store with a
//	                                    fresh copy from the primary.
//	POST /promote                       a replica becomes the primary.
//	POST /follow {"primary":"H:P"}      follow another primary.
//	POST /replicas/{name}/quarantine {"reason"}
//	POST /replicas/{name}/release       the primary's registry entry.
//
// Config.Handlers adds more routes (the commands use it for testing aids).
//
// # Guarantees
//
// The server has read, write and idle timeouts and bounded headers, so a
// slow or silent client cannot hold a connection open forever. Shutdown
// stops accepting requests, waits for those in progress (bounded by its
// context) and then returns; Serve returns nil after a Shutdown.
package admin
