// Package tlsfiles reads the PEM files of Hydra's TLS settings: a
// certificate and key that are re-read when the files change (so that
// cert-manager's or an operator's rotation needs no restart), and CA
// bundles. The manager serves with it; pkg/client dials with it.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// KeyPair is a certificate and its private key read from two PEM files.
// Every use checks whether either file changed (another inode, size or
// modification time: a Kubernetes Secret volume swaps a symlink, an
// operator may rewrite in place) and, if so, reads both again. A reload
// that fails — say the certificate was written and the key not yet —
// keeps the previous pair, logs the error once, and is tried again at the
// next use, so a half-done rotation never breaks serving.
type KeyPair struct {
	certFile, keyFile string

	mu   sync.Mutex
	cert *tls.Certificate
	// seen is the state of both files when cert was read; failed the
	// state whose reload failed last, and lastErr its error (so that a
	// failure is logged once, not at every handshake).
	seen, failed [2]os.FileInfo
	lastErr      string
}

// LoadKeyPair reads the pair; an error here (missing file, no PEM, a key
// that does not match the certificate) fails the caller's start.
func LoadKeyPair(certFile, keyFile string) (*KeyPair, error) {
	k := &KeyPair{certFile: certFile, keyFile: keyFile}
	st, err := k.stat()
	if err != nil {
		return nil, err
	}
	if err := k.load(st); err != nil {
		return nil, err
	}
	return k, nil
}

// GetCertificate is for tls.Config.GetCertificate (servers).
func (k *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return k.Current(), nil
}

// GetClientCertificate is for tls.Config.GetClientCertificate (clients).
func (k *KeyPair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return k.Current(), nil
}

// Current returns the pair, first re-reading the files if they changed.
func (k *KeyPair) Current() *tls.Certificate {
	k.mu.Lock()
	defer k.mu.Unlock()
	st, err := k.stat()
	switch {
	case err == nil && !changed(k.seen, st):
		return k.cert
	case err == nil && !changed(k.failed, st):
		return k.cert // this state failed to load already: wait for the next change
	case err == nil:
		if err = k.load(st); err != nil {
			k.failed = st
		}
	}
	if err != nil && err.Error() != k.lastErr {
		klog.ErrorS(err, "TLS certificate not reloaded; using the previous one", "certFile", k.certFile, "keyFile", k.keyFile)
	}
	k.lastErr = ""
	if err != nil {
		k.lastErr = err.Error()
	}
	return k.cert
}

// stat reads the state of both files.
func (k *KeyPair) stat() ([2]os.FileInfo, error) {
	var st [2]os.FileInfo
	for i, name := range []string{k.certFile, k.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return st, fmt.Errorf("tlsfiles: %w", err)
		}
		st[i] = fi
	}
	return st, nil
}

// load reads and checks the pair; the caller holds mu (or owns k).
func (k *KeyPair) load(st [2]os.FileInfo) error {
	cert, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return fmt.Errorf("tlsfiles: certificate %s, key %s: %w", k.certFile, k.keyFile, err)
	}
	k.cert, k.seen = &cert, st
	if leaf := cert.Leaf; leaf != nil {
		klog.InfoS("TLS certificate loaded", "certFile", k.certFile, "subject", leaf.Subject.String(),
			"dnsNames", leaf.DNSNames, "notAfter", leaf.NotAfter)
		if time.Now().After(leaf.NotAfter) {
			klog.InfoS("WARNING: the TLS certificate has expired: peers will refuse it", "certFile", k.certFile, "notAfter", leaf.NotAfter)
		}
	}
	return nil
}

// changed reports whether either file differs from the state in was.
func changed(was, now [2]os.FileInfo) bool {
	for i := range was {
		a, b := was[i], now[i]
		if a == nil || !os.SameFile(a, b) || a.Size() != b.Size() || !a.ModTime().Equal(b.ModTime()) {
			return true
		}
	}
	return false
}

// LoadCAPool reads a bundle of PEM certificates. Unlike
// x509.CertPool.AppendCertsFromPEM, which skips what it cannot parse, any
// block that is not a valid certificate is an error, and so is a file
// without one: a typo must not leave a client trusting nothing (or a
// server accepting no client) without saying why.
func LoadCAPool(file string) (*x509.CertPool, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tlsfiles: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for block, rest := pem.Decode(raw); block != nil; block, rest = pem.Decode(rest) {
		n++
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("tlsfiles: CA bundle %s: PEM block %d is a %q, want CERTIFICATE", file, n, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tlsfiles: CA bundle %s: PEM block %d: %w", file, n, err)
		}
		pool.AddCert(cert)
	}
	if n == 0 {
		return nil, errors.New("tlsfiles: CA bundle " + file + ": no PEM certificate in it")
	}
	return pool, nil
}
