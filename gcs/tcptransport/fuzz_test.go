package tcptransport_test

import (
	"bytes"
	"encoding/pem"
	"testing"

	"github.com/repld/repld/gcs/tcptransport"
)

// FuzzParseCertPool feeds arbitrary CA files to ParseCertPool: it must never
// panic, and it accepts a file only if every PEM block in it is a valid
// certificate and there is at least one.
func FuzzParseCertPool(f *testing.F) {
	ca := newCA(f, "fuzz CA")
	node := issue(f, ca, "node")
	f.Add(ca.PEM)
	f.Add(append(append([]byte("# Issuer: fuzz CA\n"), ca.PEM...), node.CertPEM...))
	f.Add(node.KeyPEM)
	f.Add([]byte{})
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add(ca.PEM[:len(ca.PEM)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		pool, err := tcptransport.ParseCertPool(data)
		if (pool == nil) == (err == nil) {
			t.Fatalf("ParseCertPool = %v, %v: want exactly one of pool and error", pool, err)
		}
		if err != nil {
			return
		}
		block, _ := pem.Decode(data)
		if block == nil || block.Type != "CERTIFICATE" || !bytes.Contains(data, []byte("-----BEGIN CERTIFICATE-----")) {
			t.Fatalf("accepted a file without a certificate block: %q", data)
		}
	})
}
