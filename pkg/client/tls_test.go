package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/internal/testcerts"
	"github.com/hydra-csi/hydra/pkg/client"
)

// tlsServer answers /healthz over TLS with a certificate of ca; with
// clientCA it demands a client certificate of that CA in the handshake.
func tlsServer(t *testing.T, ca, clientCA *testcerts.CA) string {
	t.Helper()
	pair := ca.Server(t, "server")
	cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != nil {
		srv.TLS.ClientCAs = clientCAPool(clientCA)
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

func clientCAPool(ca *testcerts.CA) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// TestTLSOptions: WithCAFile makes an https:// manager verify against the
// bundle (and only it), WithClientCert presents a certificate.
func TestTLSOptions(t *testing.T) {
	ca, clientCA := testcerts.NewCA(t, "server-ca"), testcerts.NewCA(t, "client-ca")
	plain, mutual := tlsServer(t, ca, nil), tlsServer(t, ca, clientCA)
	cert := clientCA.Client(t, "agent")
	ctx := context.Background()
	newClient := func(url string, opts ...client.Option) *client.Client {
		c, err := client.New(url, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if err := newClient(plain, client.WithCAFile(ca.File)).Healthz(ctx); err != nil {
		t.Errorf("with the CA: %v", err)
	}
	if err := newClient(plain).Healthz(ctx); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("without the CA (system roots): %v, want unknown authority", err)
	}
	if err := newClient(plain, client.WithCAFile(clientCA.File)).Healthz(ctx); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("with another CA: %v, want unknown authority", err)
	}
	if err := newClient(mutual, client.WithCAFile(ca.File)).Healthz(ctx); err == nil {
		t.Error("without a client certificate: the server that requires one answered")
	}
	if err := newClient(mutual, client.WithCAFile(ca.File), client.WithClientCert(cert.CertFile, cert.KeyFile)).Healthz(ctx); err != nil {
		t.Errorf("with a client certificate: %v", err)
	}
}

// TestTLSOptionErrors: TLS settings that cannot work fail New, naming
// what is wrong.
func TestTLSOptionErrors(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	pair := ca.Client(t, "c")
	cases := []struct {
		name string
		url  string
		opts []client.Option
		want string
	}{
		{"CA for plain HTTP", "http://manager:8080", []client.Option{client.WithCAFile(ca.File)}, "is not https://"},
		{"client cert for plain HTTP", "manager:8080", []client.Option{client.WithClientCert(pair.CertFile, pair.KeyFile)}, "is not https://"},
		{"missing CA file", "https://manager", []client.Option{client.WithCAFile("/nonexistent/ca.crt")}, "CA file: tlsfiles: open /nonexistent/ca.crt"},
		{"key file is no CA", "https://manager", []client.Option{client.WithCAFile(pair.KeyFile)}, "want CERTIFICATE"},
		{"cert without key", "https://manager", []client.Option{client.WithClientCert(pair.CertFile, "")}, "both its certificate and its key"},
		{"missing key", "https://manager", []client.Option{client.WithClientCert(pair.CertFile, "/nonexistent/tls.key")}, "/nonexistent/tls.key"},
		{"custom HTTP client and CA", "https://manager", []client.Option{client.WithHTTPClient(http.DefaultClient), client.WithCAFile(ca.File)}, "cannot be combined"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.New(tc.url, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// Empty files are no option at all.
	if _, err := client.New("http://manager", client.WithCAFile(""), client.WithClientCert("", "")); err != nil {
		t.Errorf("empty TLS options: %v", err)
	}
}
