//go:build linux

// Linux only for Pdeathsig: an etcd or kube-apiserver whose test binary
// died (a timeout panic skips t.Cleanup) must not outlive it.

package testenv

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// kubeReadyTimeout bounds the wait for etcd's /health and then for
	// kube-apiserver's /readyz (a cold start on 2 shared cores takes ~5 s).
	kubeReadyTimeout = 90 * time.Second
	// kubeStartAttempts covers the race between FreePort and the binds.
	kubeStartAttempts = 3
	// kubeServiceRange is the (unused) service CIDR the apiserver wants.
	kubeServiceRange = "10.96.0.0/16"
)

// Kube is a real kube-apiserver on 127.0.0.1 over its own etcd, for one
// test: no kubelet, no controllers, no scheduler. Objects are what the
// test writes; a test plays the other components' parts itself.
type Kube struct {
	// URL is the API server's "https://127.0.0.1:PORT".
	URL string
	// Kubeconfig is a file naming URL, CAFile and Token (user "admin" in
	// group system:masters), for clientcmd and for --kubeconfig flags.
	Kubeconfig string
	// Token is the admin's bearer token, fresh per server.
	Token string
	// CAFile holds the CA that signed the API server's certificate.
	CAFile string

	etcd, apiserver *process
}

// StartKube starts etcd and kube-apiserver from the binaries `make tools`
// builds, waits until the API server is ready, and stops both in
// t.Cleanup. Their logs are printed if the test fails.
func StartKube(t testing.TB) *Kube {
	t.Helper()
	etcdBin, apiBin := Tool(t, "etcd"), Tool(t, "kube-apiserver")
	dir := t.TempDir()
	k := &Kube{Token: randomHex(t, 16)}
	pki := writeKubePKI(t, dir, k.Token)
	k.CAFile = pki.caFile
	// Cleanups run last-in first-out: the API server stops before etcd.
	k.etcd = startWithRetry(t, func() (*process, error) { return startEtcd(etcdBin, dir) })
	k.apiserver = startWithRetry(t, func() (*process, error) {
		p, url, err := startAPIServer(apiBin, dir, k.etcd.url, pki, k.Token)
		k.URL = url
		return p, err
	})
	k.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(k.Kubeconfig, k.URL, k.CAFile, k.Token); err != nil {
		t.Fatal(err)
	}
	return k
}

// StopAPIServer stops kube-apiserver (etcd keeps running), so that tests
// see what their code does when the API server is unreachable. It may
// be called any number of times; the server does not come back.
func (k *Kube) StopAPIServer() { k.apiserver.stop() }

// startWithRetry starts a process up to kubeStartAttempts times (fresh
// ports each time), stops it in t.Cleanup and shows its log if t fails.
func startWithRetry(t testing.TB, start func() (*process, error)) *process {
	t.Helper()
	var last error
	for range kubeStartAttempts {
		p, err := start()
		if err == nil {
			t.Cleanup(func() {
				p.stop()
				if t.Failed() {
					t.Logf("testenv: %s log (last %d lines of %s):\n%s", p.name, processLogTail, p.logPath, p.logTail())
				}
			})
			return p
		}
		last = err
	}
	t.Fatal(last)
	return nil
}

// startEtcd runs a one-member etcd with its data below dir.
func startEtcd(bin, dir string) (*process, error) {
	client, peer := "http://"+HostPort(freePort()), "http://"+HostPort(freePort())
	data, err := os.MkdirTemp(dir, "etcd-data-")
	if err != nil {
		return nil, fmt.Errorf("testenv: etcd data dir: %w", err)
	}
	p := &process{name: "etcd", url: client, logPath: data + ".log"}
	err = p.start(bin, "--name=hydra-test", "--data-dir="+data,
		"--listen-client-urls="+client, "--advertise-client-urls="+client,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
		"--initial-cluster=hydra-test="+peer, "--log-level=warn",
		"--unsafe-no-fsync") // a test's data need not survive a power cut
	if err != nil {
		return nil, err
	}
	if err := p.waitReady(http.DefaultClient, client+"/health", ""); err != nil {
		p.stop()
		return nil, fmt.Errorf("%w\netcd log:\n%s", err, p.logTail())
	}
	return p, nil
}

// startAPIServer runs kube-apiserver against etcd on a free port with the
// command line docs/development.md ("The test peers") gives, serving pki's certificate.
func startAPIServer(bin, dir, etcd string, pki kubePKI, token string) (*process, string, error) {
	port := freePort()
	url := "https://" + HostPort(port)
	certDir, err := os.MkdirTemp(dir, "apiserver-")
	if err != nil {
		return nil, url, fmt.Errorf("testenv: kube-apiserver dir: %w", err)
	}
	p := &process{name: "kube-apiserver", url: url, logPath: certDir + ".log"}
	err = p.start(bin, "--etcd-servers="+etcd,
		"--service-account-key-file="+pki.saPub, "--service-account-signing-key-file="+pki.saKey,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--token-auth-file="+pki.tokens, "--authorization-mode=RBAC",
		"--secure-port="+strconv.Itoa(port), "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--cert-dir="+certDir, "--tls-cert-file="+pki.certFile, "--tls-private-key-file="+pki.keyFile,
		"--service-cluster-ip-range="+kubeServiceRange,
		// As kubeadm, kind and managed clusters do: CSI node plugins are
		// privileged pods, and tests/manifests dry-runs one.
		"--allow-privileged=true")
	if err != nil {
		return nil, url, err
	}
	client, err := caClient(pki.caFile)
	if err == nil {
		err = p.waitReady(client, url+"/readyz", token)
	}
	if err != nil {
		p.stop()
		return nil, url, fmt.Errorf("%w\nkube-apiserver log:\n%s", err, p.logTail())
	}
	return p, url, nil
}

// caClient trusts only the CA in caFile.
func caClient(caFile string) (*http.Client, error) {
	pool := x509.NewCertPool()
	raw, err := os.ReadFile(caFile) //nolint:gosec // G304: the test's own file
	if err != nil {
		return nil, fmt.Errorf("testenv: CA: %w", err)
	}
	if !pool.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("testenv: CA %s: no certificate in it", caFile)
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		Proxy:           nil,
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}, nil
}

// kubePKI are the files the API server needs: a CA and a serving
// certificate for 127.0.0.1, the service-account key pair, the tokens.
type kubePKI struct {
	caFile, certFile, keyFile, saKey, saPub, tokens string
}

// writeKubePKI makes the API server's keys in dir. A certificate of our
// own (rather than the one the server would make for itself) names
// 127.0.0.1, so clients verify it.
func writeKubePKI(t testing.TB, dir, token string) kubePKI {
	t.Helper()
	p := kubePKI{
		caFile: filepath.Join(dir, "ca.crt"), certFile: filepath.Join(dir, "apiserver.crt"),
		keyFile: filepath.Join(dir, "apiserver.key"), saKey: filepath.Join(dir, "sa.key"),
		saPub: filepath.Join(dir, "sa.pub"), tokens: filepath.Join(dir, "tokens.csv"),
	}
	caKey, caCert, caDER := newCert(t, "hydra-test-ca", nil, nil)
	servingKey, _, servingDER := newCert(t, "kube-apiserver", caCert, caKey)
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		p.caFile:   pemBlock("CERTIFICATE", caDER),
		p.certFile: pemBlock("CERTIFICATE", servingDER),
		p.keyFile:  pemKey(t, servingKey),
		p.saKey:    pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey)),
		p.saPub:    pemBlock("PUBLIC KEY", saPub),
		p.tokens:   []byte(token + `,admin,admin,"system:masters"` + "\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// newCert makes an ECDSA key and a certificate for it: a CA when parent
// is nil, else a serving certificate for sans (IP addresses and DNS
// names), 127.0.0.1 and localhost when none are given.
func newCert(t testing.TB, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, sans ...string) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
	}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
		parent, parentKey = tmpl, key
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		if len(sans) == 0 {
			sans = []string{"127.0.0.1", "localhost"}
		}
		for _, san := range sans {
			if ip := net.ParseIP(san); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, san)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert, der
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pemKey(t testing.TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("EC PRIVATE KEY", der)
}

// writeKubeconfig writes a kubeconfig of one cluster, user and context.
// JSON is YAML, so no YAML library is needed.
func writeKubeconfig(path, url, caFile, token string) error {
	doc := fmt.Sprintf(`{"apiVersion": "v1", "kind": "Config",
 "clusters": [{"name": "hydra-test", "cluster": {"server": %q, "certificate-authority": %q}}],
 "users": [{"name": "admin", "user": {"token": %q}}],
 "contexts": [{"name": "hydra-test", "context": {"cluster": "hydra-test", "user": "admin"}}],
 "current-context": "hydra-test"}
`, url, caFile, token)
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		return fmt.Errorf("testenv: kubeconfig: %w", err)
	}
	return nil
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// freePort is FreePort without a test to fail: a port that cannot be
// had shows up as a failed start, which is retried.
func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitReady polls url until it answers 200, the process exits, or
// kubeReadyTimeout passes.
func (p *process) waitReady(client *http.Client, url, token string) error {
	ctx, cancel := context.WithTimeout(context.Background(), kubeReadyTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = probe(ctx, client, url, token); last == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("testenv: %s exited before it was ready (%s: %w)", p.name, url, last)
		case <-ctx.Done():
			return fmt.Errorf("testenv: %s not ready after %v: %s: %w", p.name, kubeReadyTimeout, url, last)
		case <-tick.C:
		}
	}
}

func probe(ctx context.Context, client *http.Client, url, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// processLogTail is how many lines of a process's log a failure shows.
const processLogTail = 40

// process is one peer binary run for a test, its output in logPath.
type process struct {
	name, url, logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been reaped
}

// start launches bin with args.
func (p *process) start(bin string, args ...string) error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("testenv: %s log: %w", p.name, err)
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Killed with the test binary, even when a timeout panic skips cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testenv: start %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	return nil
}

// stop sends SIGTERM, then SIGKILL after processStopTimeout, and reaps
// the process. It may be called any number of times.
func (p *process) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(processStopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.cmd = nil
}

// processStopTimeout is the grace between SIGTERM and SIGKILL.
const processStopTimeout = 10 * time.Second

// logTail returns the last lines of the process's log.
func (p *process) logTail() string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > processLogTail {
		lines = lines[len(lines)-processLogTail:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
