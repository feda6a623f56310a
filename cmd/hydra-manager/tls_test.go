package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/internal/testcerts"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
)

const tlsAdminToken = "admin-token-for-tls-tests-0123"

// tlsFixture is a server CA with a server certificate installed as
// tls.crt/tls.key in a directory (so a test can rotate it), a separate CA
// for clients with one client certificate, and a token file.
type tlsFixture struct {
	serverCA, clientCA *testcerts.CA
	dir                string // tls.crt, tls.key
	client             testcerts.Pair
	tokens             string
	store              string
}

func newTLSFixture(t *testing.T) *tlsFixture {
	t.Helper()
	f := &tlsFixture{serverCA: testcerts.NewCA(t, "server-ca"), clientCA: testcerts.NewCA(t, "client-ca"), dir: t.TempDir()}
	f.install(t, f.serverCA.Server(t, "manager"))
	f.client = f.clientCA.Client(t, "publisher-ci")
	f.tokens = filepath.Join(t.TempDir(), "tokens.csv")
	if err := os.WriteFile(f.tokens, []byte(tlsAdminToken+",admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.store = "bolt://" + filepath.Join(t.TempDir(), "state.db")
	return f
}

// install puts a pair in place as a Secret volume update does: new files
// renamed over the old ones.
func (f *tlsFixture) install(t *testing.T, p testcerts.Pair) {
	t.Helper()
	for src, dst := range map[string]string{p.CertFile: "tls.crt", p.KeyFile: "tls.key"} {
		raw, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(f.dir, ".tmp")
		if err := os.WriteFile(tmp, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(f.dir, dst)); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *tlsFixture) args(extra ...string) []string {
	return append([]string{"--store", f.store, "--token-file", f.tokens,
		"--tls-cert", filepath.Join(f.dir, "tls.crt"), "--tls-key", filepath.Join(f.dir, "tls.key")}, extra...)
}

func tlsClient(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, append([]client.Option{client.WithToken(tlsAdminToken)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// servedSerial is the serial number of the certificate the server at
// addr presents to a new connection, verified against ca.
func servedSerial(t *testing.T, addr string, ca *testcerts.CA) string {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestTLS runs hydra-manager with --tls-cert/--tls-key: a client that
// trusts the CA works, one that does not (or speaks plain HTTP) is
// refused, TLS below 1.2 is refused, and a rotated certificate is served
// without a restart.
func TestTLS(t *testing.T) {
	f := newTLSFixture(t)
	r := startReplica(t, f.args()...)
	url := "https://" + r.addr
	ctx := context.Background()

	if _, err := tlsClient(t, url, client.WithCAFile(f.serverCA.File)).CreateChannel(ctx, "over-tls", release.Config{}); err != nil {
		t.Fatalf("client with the CA: %v", err)
	}
	var unknown x509.UnknownAuthorityError
	if _, err := tlsClient(t, url).ListChannels(ctx); !errors.As(err, &unknown) {
		t.Errorf("client without the CA: %v, want an unknown-authority error", err)
	}
	if _, err := tlsClient(t, url, client.WithCAFile(testcerts.NewCA(t, "other").File)).ListChannels(ctx); !errors.As(err, &unknown) {
		t.Errorf("client with another CA: %v, want an unknown-authority error", err)
	}
	if _, err := tlsClient(t, "http://"+r.addr).ListChannels(ctx); err == nil || !strings.Contains(err.Error(), "HTTPS server") {
		t.Errorf("plain HTTP client: %v, want the server's refusal", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(f.serverCA.Cert)
	old := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	if conn, err := tls.Dial("tcp", r.addr, old); err == nil {
		conn.Close()
		t.Error("a TLS 1.1 handshake succeeded, want TLS 1.2 at least")
	}

	// Rotation: the next connection gets the new certificate.
	before := servedSerial(t, r.addr, f.serverCA)
	next := f.serverCA.Server(t, "manager-rotated")
	f.install(t, next)
	if got := servedSerial(t, r.addr, f.serverCA); got != next.Cert.SerialNumber.String() || got == before {
		t.Fatalf("after rotation the server presents serial %s, want %s (was %s)", got, next.Cert.SerialNumber, before)
	}
	if _, err := tlsClient(t, url, client.WithCAFile(f.serverCA.File)).GetChannel(ctx, "over-tls"); err != nil {
		t.Fatalf("client after rotation: %v", err)
	}
}

// TestMutualTLS runs hydra-manager with --tls-client-ca: the API refuses a
// client without a certificate, the handshake refuses one signed by
// another CA, a client with a good certificate gets through, and probes
// still reach /healthz and /readyz without one.
func TestMutualTLS(t *testing.T) {
	logs := captureKlog(t)
	f := newTLSFixture(t)
	r := startReplica(t, f.args("--tls-client-ca", f.clientCA.File)...)
	url := "https://" + r.addr
	ctx := context.Background()
	ca := client.WithCAFile(f.serverCA.File)

	_, err := tlsClient(t, url, ca).ListChannels(ctx)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized || !strings.Contains(ce.Body.Message, "client certificate") {
		t.Errorf("client without a certificate: %v, want 401 naming the client certificate", err)
	}
	stranger := f.serverCA.Client(t, "stranger") // signed by a CA the manager does not trust for clients
	// In TLS 1.3 the client may already be writing its request when the
	// server's alert arrives: the error is the alert, a reset or a broken
	// pipe, but never an HTTP answer.
	if _, err := tlsClient(t, url, ca, client.WithClientCert(stranger.CertFile, stranger.KeyFile)).ListChannels(ctx); err == nil || errors.As(err, &ce) {
		t.Errorf("client with a certificate of another CA: %v, want the handshake refused", err)
	}
	good := tlsClient(t, url, ca, client.WithClientCert(f.client.CertFile, f.client.KeyFile))
	if _, err := good.CreateChannel(ctx, "mtls", release.Config{}); err != nil {
		t.Fatalf("client with a good certificate: %v", err)
	}
	klog.Flush()
	if !strings.Contains(logs.String(), `channel="mtls" clientCert="publisher-ci"`) {
		t.Errorf("the audit line of the channel's creation does not name the client certificate:\n%s", logs)
	}
	// The certificate does not replace the token.
	noToken, err := client.New(url, ca, client.WithClientCert(f.client.CertFile, f.client.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noToken.ListChannels(ctx); !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized || !strings.Contains(ce.Body.Message, "bearer token") {
		t.Errorf("client with a certificate but no token: %v, want 401 for the token", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(f.serverCA.Cert)
	probe := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := probe.Get(url + path)
		if err != nil {
			t.Errorf("GET %s without a client certificate: %v", path, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s without a client certificate: %d, want 200 (kubelet probes present none)", path, resp.StatusCode)
		}
	}
}

// TestTLSFlagErrors: bad TLS settings stop the start, naming the flag.
func TestTLSFlagErrors(t *testing.T) {
	f := newTLSFixture(t)
	other := f.serverCA.Server(t, "other")
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(f.dir, "tls.crt"), filepath.Join(f.dir, "tls.key")
	base := []string{"--store", f.store, "--insecure-no-auth", "--listen", "127.0.0.1:0"}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"cert without key", []string{"--tls-cert", cert}, "--tls-cert needs --tls-key"},
		{"key without cert", []string{"--tls-key", key}, "--tls-key needs --tls-cert"},
		{"client CA without TLS", []string{"--tls-client-ca", f.clientCA.File}, "--tls-client-ca needs --tls-cert"},
		{"missing cert", []string{"--tls-cert", cert + ".none", "--tls-key", key}, "--tls-cert: "},
		{"missing key", []string{"--tls-cert", cert, "--tls-key", key + ".none"}, "--tls-key: "},
		{"missing client CA", []string{"--tls-cert", cert, "--tls-key", key, "--tls-client-ca", garbage + ".none"}, "--tls-client-ca: "},
		{"key of another cert", []string{"--tls-cert", cert, "--tls-key", other.KeyFile}, "--tls-cert/--tls-key: "},
		{"cert not PEM", []string{"--tls-cert", garbage, "--tls-key", key}, "--tls-cert/--tls-key: "},
		{"client CA not PEM", []string{"--tls-cert", cert, "--tls-key", key, "--tls-client-ca", garbage}, "--tls-client-ca: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), append(append([]string{}, base...), tc.args...), io.Discard, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// syncBuffer is a log sink that tests read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// captureKlog sends klog's output to a buffer until the test ends.
func captureKlog(t *testing.T) *syncBuffer {
	t.Helper()
	buf := &syncBuffer{}
	klog.LogToStderr(false)
	klog.SetOutput(buf)
	t.Cleanup(func() {
		klog.Flush()
		klog.SetOutput(io.Discard)
		klog.LogToStderr(true)
	})
	return buf
}

// TestPlainHTTPWarns: without --tls-cert the manager says once, at start,
// that tokens cross the network in clear; with it, it does not.
func TestPlainHTTPWarns(t *testing.T) {
	const warning = "serving plain HTTP (no --tls-cert)"
	logs := captureKlog(t)
	f := newTLSFixture(t)
	r := startReplica(t, "--store", f.store, "--token-file", f.tokens)
	for range 3 {
		if _, err := tlsClient(t, "http://"+r.addr).ListChannels(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	r.stop()
	if n := strings.Count(logs.String(), warning); n != 1 {
		t.Errorf("plain HTTP: the warning appears %d times, want once:\n%s", n, logs)
	}
	r = startReplica(t, f.args()...)
	r.stop()
	if n := strings.Count(logs.String(), warning); n != 1 {
		t.Errorf("with --tls-cert the warning appears again:\n%s", logs)
	}
}
