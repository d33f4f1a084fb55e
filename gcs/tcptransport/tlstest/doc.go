// Package tlstest makes throwaway certificate authorities and node
// certificates for tests of TLS setups, in the shape tcptransport expects:
// ECDSA P-256 keys, and node certificates valid for both serverAuth and
// clientAuth with SANs for the loopback addresses. Nothing here is fit for
// production keys.
package tlstest
