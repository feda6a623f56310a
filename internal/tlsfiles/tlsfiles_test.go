package tlsfiles_test

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/internal/testcerts"
	"github.com/hydra-csi/hydra/internal/tlsfiles"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// install copies a pair to tls.crt and tls.key in dir the way a
// Kubernetes Secret volume does: new files, then a rename over the old.
func install(t *testing.T, dir string, p testcerts.Pair) {
	t.Helper()
	for src, dst := range map[string]string{p.CertFile: "tls.crt", p.KeyFile: "tls.key"} {
		tmp := filepath.Join(dir, "."+dst+".tmp")
		if err := os.WriteFile(tmp, read(t, src), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, dst)); err != nil {
			t.Fatal(err)
		}
	}
}

func serial(kp *tlsfiles.KeyPair) string { return kp.Current().Leaf.SerialNumber.String() }

// TestKeyPairReloads: a rotated pair is served from the next use on, a
// half-written rotation keeps the previous pair, and once the files are
// whole again the new pair is served.
func TestKeyPairReloads(t *testing.T) {
	ca := testcerts.NewCA(t, "test")
	first, second, third := ca.Server(t, "first"), ca.Server(t, "second"), ca.Server(t, "third")
	dir := t.TempDir()
	install(t, dir, first)
	kp, err := tlsfiles.LoadKeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	if got := serial(kp); got != first.Cert.SerialNumber.String() {
		t.Fatalf("serving %s, want the first certificate", got)
	}
	cert, _ := kp.GetCertificate(nil)
	if cert != kp.Current() {
		t.Fatal("unchanged files were read again")
	}

	install(t, dir, second) // (renamed into place, as Secret volumes do)
	if got := serial(kp); got != second.Cert.SerialNumber.String() {
		t.Fatalf("after rotation serving %s, want the second certificate", got)
	}

	// Half a rotation: the third certificate with the second's key.
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), read(t, third.CertFile), 0o600); err != nil {
		t.Fatal(err)
	}
	bump(t, filepath.Join(dir, "tls.crt"))
	if got := serial(kp); got != second.Cert.SerialNumber.String() {
		t.Fatalf("with a mismatched key serving %s, want the second certificate still", got)
	}
	// The key arrives, written in place this time.
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), read(t, third.KeyFile), 0o600); err != nil {
		t.Fatal(err)
	}
	bump(t, filepath.Join(dir, "tls.key"))
	if got := serial(kp); got != third.Cert.SerialNumber.String() {
		t.Fatalf("after the key arrived serving %s, want the third certificate", got)
	}
	cc, _ := kp.GetClientCertificate(nil)
	if cc.Leaf.SerialNumber.String() != third.Cert.SerialNumber.String() {
		t.Fatal("GetClientCertificate does not give the current pair")
	}

	// Files gone (a volume being remounted): keep serving.
	if err := os.Remove(filepath.Join(dir, "tls.key")); err != nil {
		t.Fatal(err)
	}
	if got := serial(kp); got != third.Cert.SerialNumber.String() {
		t.Fatalf("with the key gone serving %s, want the third certificate still", got)
	}
}

// bump moves a file's modification time forward, as a later write would:
// two writes in the same clock tick of the file system may leave it equal.
func bump(t *testing.T, name string) {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	next := fi.ModTime().Add(time.Second)
	if err := os.Chtimes(name, next, next); err != nil {
		t.Fatal(err)
	}
}

func TestLoadKeyPairErrors(t *testing.T) {
	ca := testcerts.NewCA(t, "test")
	a, b := ca.Server(t, "a"), ca.Server(t, "b")
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, cert, key, want string
	}{
		{"missing certificate", filepath.Join(dir, "none.crt"), a.KeyFile, "none.crt"},
		{"missing key", a.CertFile, filepath.Join(dir, "none.key"), "none.key"},
		{"key of another certificate", a.CertFile, b.KeyFile, "private key does not match"},
		{"not PEM", garbage, a.KeyFile, "garbage.pem"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tlsfiles.LoadKeyPair(tc.cert, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadKeyPair: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadCAPool(t *testing.T) {
	ca, other := testcerts.NewCA(t, "test"), testcerts.NewCA(t, "other")
	leaf := ca.Server(t, "leaf")
	dir := t.TempDir()
	write := func(name string, content []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bundle := write("bundle.pem", append(read(t, other.File), read(t, ca.File)...))
	pool, err := tlsfiles.LoadCAPool(bundle)
	if err != nil {
		t.Fatal(err)
	}
	// The second certificate of the bundle is in the pool too.
	if _, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Fatalf("a certificate of the bundle's CA does not verify: %v", err)
	}

	cases := []struct {
		name, file, want string
	}{
		{"missing", filepath.Join(dir, "none.pem"), "none.pem"},
		{"empty", write("empty.pem", nil), "no PEM certificate"},
		{"not PEM", write("text.pem", []byte("hello\n")), "no PEM certificate"},
		{"a key, not a certificate", write("key.pem", read(t, leaf.KeyFile)), "PEM block 1 is a \"PRIVATE KEY\""},
		{"broken certificate", write("broken.pem", bytes.Replace(read(t, ca.File), []byte("MII"), []byte("MIX"), 1)), "PEM block 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tlsfiles.LoadCAPool(tc.file)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadCAPool: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
