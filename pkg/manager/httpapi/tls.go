package httpapi

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"

	"github.com/hydra-csi/hydra/internal/tlsfiles"
	"github.com/hydra-csi/hydra/pkg/api"
)

// TLSConfig is the manager's TLS: TLS 1.2 or newer, the certificate of kp
// (re-read when its files change), and, when clientCAs is not nil, client
// certificates verified against it. Give Options.RequireClientCert the
// same clientCAs != nil.
//
// Client certificates are asked for and verified in the handshake (a
// certificate that does not verify ends it) but not demanded there
// (tls.VerifyClientCertIfGiven): the API under /v1 refuses a request
// without one (requireClientCert), while /healthz, /readyz and /metrics —
// which need no token either — stay reachable by kubelet's probes and
// Prometheus, which present none.
func TLSConfig(kp *tlsfiles.KeyPair, clientCAs *x509.CertPool) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: kp.GetCertificate}
	if clientCAs != nil {
		cfg.ClientCAs = clientCAs
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg
}

// requireClientCert refuses a request that did not present a client
// certificate the handshake verified, when Options.RequireClientCert.
func (s *Server) requireClientCert(r *http.Request) error {
	if !s.opts.RequireClientCert || r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return nil
	}
	return newHTTPError(http.StatusUnauthorized, api.CodeUnauthorized, "",
		"a client certificate signed by the manager's --tls-client-ca is required")
}
