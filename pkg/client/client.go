// Package client is the Go client of the manager's HTTP API. The hydra CLI,
// the node agent and the tests use it; the bodies are those of package api.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/hydra-csi/hydra/internal/tlsfiles"
	"github.com/hydra-csi/hydra/pkg/api"
)

// Client talks to one manager.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
	// customHTTP is set by WithHTTPClient, whose transport the TLS
	// options must not silently replace.
	customHTTP bool
	// caFile, certFile and keyFile are the TLS options' files.
	caFile, certFile, keyFile string
}

// Option adjusts a Client.
type Option func(*Client)

// WithHTTPClient replaces the HTTP client (timeouts, TLS, transport). It
// cannot be combined with WithCAFile or WithClientCert: configure TLS in
// that client's transport instead.
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) { c.http, c.customHTTP = h, true }
}

// WithToken sets the bearer token sent with every request.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithCAFile verifies an https:// manager against the PEM CA bundle in
// file instead of the system's roots. The bundle is read once, by New.
// An empty file is no option.
func WithCAFile(file string) Option { return func(c *Client) { c.caFile = file } }

// WithClientCert presents the certificate in certFile, with the private key
// in keyFile, to a manager that requires client certificates (mTLS). Both
// are PEM files, read by New and read again whenever either changes, so a
// rotated certificate is used without a restart. Empty files are no option.
func WithClientCert(certFile, keyFile string) Option {
	return func(c *Client) { c.certFile, c.keyFile = certFile, keyFile }
}

// New returns a client of the manager at baseURL ("http://host:8080").
// Requests carry no overall timeout: long-polls hold for minutes, so use
// the context for deadlines.
func New(baseURL string, opts ...Option) (*Client, error) {
	if baseURL == "" {
		return nil, errors.New("client: no manager URL (set --manager or HYDRA_MANAGER)")
	}
	if !strings.Contains(baseURL, "://") {
		baseURL = "http://" + baseURL
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: manager URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("client: manager URL %q: want http(s)://HOST[:PORT]", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := &Client{base: u}
	for _, o := range opts {
		o(c)
	}
	if err := c.setTransport(); err != nil {
		return nil, err
	}
	return c, nil
}

// setTransport builds the HTTP client from the TLS options, unless
// WithHTTPClient gave one.
func (c *Client) setTransport() error {
	withTLS := c.caFile != "" || c.certFile != "" || c.keyFile != ""
	switch {
	case c.customHTTP && withTLS:
		return errors.New("client: WithHTTPClient cannot be combined with WithCAFile or WithClientCert: configure TLS in that client's transport")
	case c.customHTTP:
		return nil
	case withTLS && c.base.Scheme != "https":
		// A CA or client certificate for a plain-HTTP URL would protect
		// nothing, while the caller believes the token travels encrypted.
		return fmt.Errorf("client: manager URL %q is not https://, but a CA file or client certificate was given: use https:// (or drop the TLS settings)", c.base.Redacted())
	}
	t := defaultTransport()
	if withTLS {
		cfg, err := c.tlsConfig()
		if err != nil {
			return err
		}
		t.TLSClientConfig = cfg
	}
	c.http = &http.Client{Transport: t}
	return nil
}

// tlsConfig reads the TLS options' files.
func (c *Client) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.caFile != "" {
		pool, err := tlsfiles.LoadCAPool(c.caFile)
		if err != nil {
			return nil, fmt.Errorf("client: CA file: %w", err)
		}
		cfg.RootCAs = pool
	}
	if (c.certFile == "") != (c.keyFile == "") {
		return nil, errors.New("client: a client certificate needs both its certificate and its key file")
	}
	if c.certFile != "" {
		kp, err := tlsfiles.LoadKeyPair(c.certFile, c.keyFile)
		if err != nil {
			return nil, fmt.Errorf("client: client certificate: %w", err)
		}
		cfg.GetClientCertificate = kp.GetClientCertificate
	}
	return cfg, nil
}

// defaultTransport keeps enough idle connections for an agent or CLI
// that polls and reports concurrently.
func defaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	t.ResponseHeaderTimeout = 0 // long-polls answer late by design
	return t
}

// Error is a non-2xx answer of the manager.
type Error struct {
	Status int
	// Body is the manager's error body (code, message, offending field).
	Body api.Error
}

func (e *Error) Error() string {
	msg := e.Body.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("manager: %s (HTTP %d %s)", msg, e.Status, e.Body.Code)
}

// IsNotFound reports whether err is the manager's 404.
func IsNotFound(err error) bool { return hasStatus(err, http.StatusNotFound) }

// IsConflict reports whether err is the manager's 409.
func IsConflict(err error) bool { return hasStatus(err, http.StatusConflict) }

func hasStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// dialAttempts and dialBackoff bound the retries of a request whose
// connection failed (see retryable): 0.2+0.4+0.8+1.6 s, then the error.
const (
	dialAttempts = 5
	dialBackoff  = 200 * time.Millisecond
)

// retryable reports whether a request that failed with err may be sent
// again: after a refused connection (nothing listens at the address) any
// request, as none was received; after a reset or a connection closed
// before the answer, only a GET, which changes nothing however often the
// manager saw it.
func retryable(method string, err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	return method == http.MethodGet &&
		(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF))
}

// do sends a request with an optional JSON body and decodes a JSON answer
// into out (when out is not nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var (
		req  *http.Request
		resp *http.Response
		err  error
	)
	for attempt := 0; ; attempt++ {
		if req, err = c.newRequest(ctx, method, path, query, in); err != nil {
			return err
		}
		resp, err = c.http.Do(req)
		if err == nil || !retryable(method, err) || attempt+1 == dialAttempts {
			break
		}
		// Behind a Service, a replica that just died stays among the
		// endpoints for a moment: try again (see retryable).
		select {
		case <-ctx.Done():
		case <-time.After(dialBackoff << attempt):
		}
	}
	if err != nil {
		// net/http's *url.Error repeats the method and URL named here;
		// keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("client: %s %s: %w", method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		e, ours := decodeError(resp)
		if !ours {
			// Something other than the manager answered: an egress proxy
			// behind a Service address kube-proxy has not programmed yet,
			// or an ingress without its backend. Conntrack keeps a
			// connection on the path it took when it opened, so a reused
			// one would reach that answerer for good: drop it, and let the
			// caller's retry open a new connection.
			_ = resp.Body.Close() // read to the end above; closed again by the defer
			c.http.CloseIdleConnections()
		}
		return e
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("client: %s %s: decoding answer: %w", method, req.URL.Redacted(), err)
	}
	return nil
}

func (c *Client) newRequest(ctx context.Context, method, path string, query url.Values, in any) (*http.Request, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("client: encoding %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// decodeError reads a non-2xx answer; ours reports whether it is the
// manager's JSON error body.
func decodeError(resp *http.Response) (e *Error, ours bool) {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e = &Error{Status: resp.StatusCode}
	var body api.ErrorResponse
	if json.Unmarshal(raw, &body) == nil && body.Error.Message != "" {
		e.Body = body.Error
		return e, true
	}
	e.Body.Message = strings.TrimSpace(string(raw))
	return e, false
}

// seg escapes one path segment.
func seg(s string) string { return url.PathEscape(s) }

// Healthz checks /healthz.
func (c *Client) Healthz(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil, nil)
}

// waitQuery builds the long-poll query.
func waitQuery(index uint64, wait time.Duration) url.Values {
	q := url.Values{}
	q.Set("index", fmt.Sprint(index))
	q.Set("wait", wait.String())
	return q
}
