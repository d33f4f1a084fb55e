// Package admin is the HTTP endpoint every repld node serves for operators
// and tools: the node's status as JSON, a health check, Prometheus metrics and
// chain values for comparing nodes. It knows nothing about primaries or
// replicas: the command that runs a node hands it functions reading the node's
// state, so the same server serves both roles.
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
// Config.Handlers adds more routes (the commands use it for testing aids).
//
// # Guarantees
//
// The server has read, write and idle timeouts and bounded headers, so a
// slow or silent client cannot hold a connection open forever. Shutdown
// stops accepting requests, waits for those in progress (bounded by its
// context) and then returns; Serve returns nil after a Shutdown.
package admin
