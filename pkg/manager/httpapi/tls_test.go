package httpapi_test

import (
	"crypto/tls"
	"testing"

	"github.com/hydra-csi/hydra/internal/testcerts"
	"github.com/hydra-csi/hydra/internal/tlsfiles"
	"github.com/hydra-csi/hydra/pkg/manager/httpapi"
)

// TestTLSConfig: TLS 1.2 at least whatever Go's defaults become, and
// client certificates verified when a client CA is given. (Handshakes are
// tested end to end in cmd/hydra-manager.)
func TestTLSConfig(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	pair := ca.Server(t, "manager")
	kp, err := tlsfiles.LoadKeyPair(pair.CertFile, pair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := tlsfiles.LoadCAPool(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
		auth tls.ClientAuthType
	}{
		{"server TLS", httpapi.TLSConfig(kp, nil), tls.NoClientCert},
		{"mutual TLS", httpapi.TLSConfig(kp, pool), tls.VerifyClientCertIfGiven},
	} {
		if tc.cfg.MinVersion < tls.VersionTLS12 {
			t.Errorf("%s: MinVersion %#x, want TLS 1.2 or newer", tc.name, tc.cfg.MinVersion)
		}
		if tc.cfg.ClientAuth != tc.auth {
			t.Errorf("%s: ClientAuth %v, want %v", tc.name, tc.cfg.ClientAuth, tc.auth)
		}
		if c, err := tc.cfg.GetCertificate(nil); err != nil || c.Leaf.SerialNumber.Cmp(pair.Cert.SerialNumber) != 0 {
			t.Errorf("%s: GetCertificate: %v", tc.name, err)
		}
	}
}
