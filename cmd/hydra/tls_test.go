package main

import (
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/internal/managertest"
	"github.com/hydra-csi/hydra/internal/testcerts"
	"github.com/hydra-csi/hydra/internal/tlsfiles"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/manager/auth"
	"github.com/hydra-csi/hydra/pkg/manager/httpapi"
)

// tlsSetup is a manager served over TLS by serverCA's certificate, with
// client certificates of clientCA required when mutual.
type tlsSetup struct {
	h                  *harness
	serverCA, clientCA *testcerts.CA
	clientCert         testcerts.Pair
}

func newTLSHarness(t *testing.T, mutual bool) *tlsSetup {
	t.Helper()
	s := &tlsSetup{serverCA: testcerts.NewCA(t, "server-ca"), clientCA: testcerts.NewCA(t, "client-ca")}
	s.clientCert = s.clientCA.Client(t, "ci")
	pair := s.serverCA.Server(t, "manager")
	kp, err := tlsfiles.LoadKeyPair(pair.CertFile, pair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.Parse(strings.NewReader(adminToken + ",admin\n"))
	if err != nil {
		t.Fatal(err)
	}
	opts := managertest.Options{HTTP: httpapi.Options{Tokens: tokens, RequireClientCert: mutual}}
	if mutual {
		pool, err := tlsfiles.LoadCAPool(s.clientCA.File)
		if err != nil {
			t.Fatal(err)
		}
		opts.TLS = httpapi.TLSConfig(kp, pool)
	} else {
		opts.TLS = httpapi.TLSConfig(kp, nil)
	}
	url := managertest.Start(t, opts).URL
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("manager at %s, want https://", url)
	}
	admin, err := client.New(url, client.WithToken(adminToken), client.WithCAFile(s.serverCA.File),
		client.WithClientCert(s.clientCert.CertFile, s.clientCert.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	s.h = &harness{t: t, url: url, admin: admin, env: map[string]string{"HYDRA_MANAGER": url, "HYDRA_TOKEN": adminToken}}
	return s
}

// TestTLSFlags runs the CLI against a manager on https://: with the CA it
// works, from the flag or the environment; without it, it fails saying
// how to give it.
func TestTLSFlags(t *testing.T) {
	s := newTLSHarness(t, false)
	s.h.createChannel("tls-a")
	other := testcerts.NewCA(t, "other")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string // empty: must succeed
	}{
		{name: "CA flag", args: []string{"--ca-file", s.serverCA.File, "channel", "show", "tls-a"}},
		{name: "CA from the environment", env: map[string]string{"HYDRA_CA_FILE": s.serverCA.File}, args: []string{"channel", "create", "tls-b"}},
		{name: "flag beats environment", env: map[string]string{"HYDRA_CA_FILE": other.File},
			args: []string{"--ca-file", s.serverCA.File, "channel", "ls"}},
		{name: "no CA", args: []string{"channel", "ls"}, want: []string{"unknown authority", "--ca-file or HYDRA_CA_FILE"}},
		{name: "another CA", args: []string{"--ca-file", other.File, "channel", "ls"}, want: []string{"unknown authority"}},
		{name: "missing CA file", args: []string{"--ca-file", "/nonexistent/ca.crt", "channel", "ls"}, want: []string{"CA file", "/nonexistent/ca.crt"}},
		{name: "CA with plain HTTP", args: []string{"--manager", "http://127.0.0.1:1", "--ca-file", s.serverCA.File, "channel", "ls"},
			want: []string{"is not https://"}},
		{name: "cert without key", args: []string{"--ca-file", s.serverCA.File, "--client-cert", s.clientCert.CertFile, "channel", "ls"},
			want: []string{"--client-cert and --client-key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := s.h.sub(t)
			for k, v := range tt.env {
				h.env[k] = v
			}
			if len(tt.want) == 0 {
				h.ok(tt.args...)
				return
			}
			h.fails(tt.args, tt.want...)
		})
	}
	if ch := s.h.channel("tls-b"); ch.Name != "tls-b" {
		t.Errorf("channel tls-b not created over TLS: %+v", ch)
	}
}

// TestMutualTLSFlags: against a manager that requires client
// certificates, the CLI without one is refused with a hint, and with one
// (flags or environment) gets through.
func TestMutualTLSFlags(t *testing.T) {
	s := newTLSHarness(t, true)
	ca := []string{"--ca-file", s.serverCA.File}
	cert := []string{"--client-cert", s.clientCert.CertFile, "--client-key", s.clientCert.KeyFile}
	stranger := s.serverCA.Client(t, "stranger")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{name: "no client certificate", args: append(ca, "channel", "ls"),
			want: []string{"client certificate", "--client-cert and --client-key"}},
		{name: "certificate of another CA", args: append(append(ca, "--client-cert", stranger.CertFile, "--client-key", stranger.KeyFile), "channel", "ls"),
			want: []string{"/v1/channels"}},
		{name: "client certificate flags", args: append(append(ca, cert...), "channel", "create", "mtls-a")},
		{name: "client certificate from the environment",
			env:  map[string]string{"HYDRA_CA_FILE": s.serverCA.File, "HYDRA_CLIENT_CERT": s.clientCert.CertFile, "HYDRA_CLIENT_KEY": s.clientCert.KeyFile},
			args: []string{"channel", "show", "mtls-a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := s.h.sub(t)
			for k, v := range tt.env {
				h.env[k] = v
			}
			if len(tt.want) == 0 {
				h.ok(tt.args...)
				return
			}
			h.fails(tt.args, tt.want...)
		})
	}
}
