package app_test

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/cmd/hydra-csi/app"
	"github.com/hydra-csi/hydra/internal/managertest"
	"github.com/hydra-csi/hydra/internal/testcerts"
	"github.com/hydra-csi/hydra/internal/tlsfiles"
	"github.com/hydra-csi/hydra/pkg/manager/httpapi"
)

// mutualTLSManager is a manager on https:// that requires client
// certificates of clientCA.
func mutualTLSManager(t *testing.T, serverCA, clientCA *testcerts.CA) *managertest.Manager {
	t.Helper()
	pair := serverCA.Server(t, "manager")
	kp, err := tlsfiles.LoadKeyPair(pair.CertFile, pair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := tlsfiles.LoadCAPool(clientCA.File)
	if err != nil {
		t.Fatal(err)
	}
	return managertest.Start(t, managertest.Options{HTTP: httpapi.Options{RequireClientCert: true}, TLS: httpapi.TLSConfig(kp, pool)})
}

// TestManagerTLS runs the node plugin against a manager that requires
// mutual TLS: with --manager-ca-file and its client certificate from the
// environment, the node agent's report reaches the manager.
func TestManagerTLS(t *testing.T) {
	serverCA, clientCA := testcerts.NewCA(t, "server-ca"), testcerts.NewCA(t, "client-ca")
	mgr := mutualTLSManager(t, serverCA, clientCA)
	cert := clientCA.Client(t, "node-1")
	t.Setenv("HYDRA_CLIENT_CERT", cert.CertFile)
	t.Setenv("HYDRA_CLIENT_KEY", cert.KeyFile)
	startPlugin(t, "--manager="+mgr.URL, "--manager-ca-file="+serverCA.File)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		nodes, err := mgr.ListNodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes) == 1 && nodes[0].Node == "node-1" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("the node agent's report never reached the manager over mutual TLS")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestManagerTLSErrors: TLS settings that cannot work stop the start.
func TestManagerTLSErrors(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	cert := ca.Client(t, "node-1")
	dir := t.TempDir()
	base := []string{"--mode=controller", "--endpoint=unix://" + filepath.Join(dir, "csi", "csi.sock")}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"cert without key", []string{"--manager=https://m", "--manager-client-cert=" + cert.CertFile}, "--manager-client-cert and --manager-client-key go together"},
		{"missing CA file", []string{"--manager=https://m", "--manager-ca-file=" + filepath.Join(dir, "none.crt")}, "none.crt"},
		{"missing key", []string{"--manager=https://m", "--manager-client-cert=" + cert.CertFile, "--manager-client-key=" + filepath.Join(dir, "none.key")}, "none.key"},
		{"CA for a plain-HTTP manager", []string{"--manager=http://m", "--manager-ca-file=" + ca.File}, "is not https://"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ready, done := make(chan string, 1), make(chan error, 1)
			go func() { done <- app.Run(ctx, append(append([]string{}, base...), tc.args...), io.Discard, ready) }()
			var err error
			select {
			case err = <-done:
			case <-ready:
				cancel()
				t.Fatalf("hydra-csi started (and stopped: %v), want an error containing %q", <-done, tc.want)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestManagerTLSFromEnv: the defaults are the hydra CLI's variables, and
// a flag beats them.
func TestManagerTLSFromEnv(t *testing.T) {
	t.Setenv("HYDRA_CA_FILE", "/env/ca.crt")
	t.Setenv("HYDRA_CLIENT_CERT", "/env/tls.crt")
	t.Setenv("HYDRA_CLIENT_KEY", "/env/tls.key")
	o := app.DefaultOptions()
	if o.ManagerCAFile != "/env/ca.crt" || o.ManagerClientCert != "/env/tls.crt" || o.ManagerClientKey != "/env/tls.key" {
		t.Fatalf("defaults %+v: want the environment's", o)
	}
}
