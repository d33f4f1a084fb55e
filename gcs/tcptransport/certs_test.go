package tcptransport_test

import (
	"crypto/x509"
	"testing"

	"github.com/repld/repld/gcs/tcptransport/tlstest"
)

func newCA(t testing.TB, name string) *tlstest.CA {
	t.Helper()
	ca, err := tlstest.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issue(t testing.TB, ca *tlstest.CA, name string, usages ...x509.ExtKeyUsage) tlstest.Issued {
	t.Helper()
	is, err := ca.Issue(name, usages...)
	if err != nil {
		t.Fatal(err)
	}
	return is
}

func writeFiles(t *testing.T, is tlstest.Issued, caPEM []byte) (certFile, keyFile, caFile string) {
	t.Helper()
	certFile, keyFile, caFile, err := tlstest.WriteFiles(t.TempDir(), is, caPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, caFile
}
