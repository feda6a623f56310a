package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proxied starts a plain HTTP server that serves data with Range support
// (http.ServeContent) behind a FaultProxy, and a client for it.
func proxied(t *testing.T, data []byte) (*FaultProxy, *http.Client) {
	t.Helper()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(backend.Close)
	p := StartFaultProxy(t, backend.URL)
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return p, &http.Client{Transport: tr}
}

// get fetches the proxy's data, ranged unless rng is empty, and returns the
// status, the body bytes that arrived and the error that ended the body.
func get(t *testing.T, p *FaultProxy, c *http.Client, rng string) (int, []byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, p.URL+"/bucket/key", nil)
	if err != nil {
		t.Fatal(err)
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET through the proxy: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

func testData(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestFaultProxy(t *testing.T) {
	const size = 1 << 20
	data := testData(size)
	tests := []struct {
		name   string
		faults Faults
		rng    string
		check  func(t *testing.T, p *FaultProxy, status int, body []byte, err error)
	}{
		{"no faults", Faults{}, "bytes=100-1099", func(t *testing.T, p *FaultProxy, status int, body []byte, err error) {
			if status != http.StatusPartialContent || err != nil || !bytes.Equal(body, data[100:1100]) {
				t.Errorf("status %d, %d bytes, err %v; want 206 with bytes 100-1099", status, len(body), err)
			}
			if p.Injected() != 0 || p.BytesServed() != 1000 {
				t.Errorf("injected %d, served %d; want 0 and 1000", p.Injected(), p.BytesServed())
			}
		}},
		{"unranged GET is never faulted", Faults{ErrorRate: 0.5, ResetRate: 0.5}, "", func(t *testing.T, p *FaultProxy, status int, body []byte, err error) {
			if status != http.StatusOK || err != nil || !bytes.Equal(body, data) || p.Injected() != 0 {
				t.Errorf("status %d, %d bytes, err %v, injected %d; want the whole object untouched", status, len(body), err, p.Injected())
			}
		}},
		{"error", Faults{ErrorRate: 1}, "bytes=0-", func(t *testing.T, p *FaultProxy, status int, body []byte, err error) {
			if (status != 500 && status != 503) || err != nil || !strings.Contains(string(body), "<Code>") {
				t.Errorf("status %d, body %q, err %v; want 500/503 with an S3 error document", status, body, err)
			}
			if p.BytesServed() != 0 {
				t.Errorf("served %d bytes, want 0: error documents are no data", p.BytesServed())
			}
		}},
		{"truncate", Faults{TruncateRate: 1, Seed: 3}, "bytes=0-", func(t *testing.T, p *FaultProxy, status int, body []byte, err error) {
			// A clean close delivers everything sent, then EOF too early.
			if status != http.StatusPartialContent || !errors.Is(err, io.ErrUnexpectedEOF) ||
				len(body) >= size || !bytes.Equal(body, data[:len(body)]) || int64(len(body)) != p.BytesServed() {
				t.Errorf("status %d, %d of %d bytes (served %d), err %v; want a short, correct body and io.ErrUnexpectedEOF",
					status, len(body), size, p.BytesServed(), err)
			}
		}},
		{"reset", Faults{ResetRate: 1, Seed: 4}, "bytes=0-", func(t *testing.T, p *FaultProxy, status int, body []byte, err error) {
			if status != http.StatusPartialContent || !errors.Is(err, syscall.ECONNRESET) ||
				len(body) >= size || !bytes.Equal(body, data[:len(body)]) || p.BytesServed() >= size {
				t.Errorf("status %d, %d of %d bytes (served %d), err %v; want a connection reset mid-body",
					status, len(body), size, p.BytesServed(), err)
			}
		}},
		{"slow", Faults{SlowRate: 1, SlowDelay: time.Millisecond}, "bytes=10-", func(t *testing.T, p *FaultProxy, status int, body []byte, err error) {
			if status != http.StatusPartialContent || err != nil || !bytes.Equal(body, data[10:]) || p.Injected() != 1 {
				t.Errorf("status %d, %d bytes, err %v, injected %d; want the whole range, late", status, len(body), err, p.Injected())
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, c := proxied(t, data)
			p.SetFaults(tt.faults)
			status, body, err := get(t, p, c, tt.rng)
			if p.Requests() != 1 {
				t.Errorf("Requests() = %d, want 1", p.Requests())
			}
			tt.check(t, p, status, body, err)
		})
	}
}

// TestFaultProxySeed checks that a seed fixes the sequence of faults, and
// that the rates mix faults and clean answers.
func TestFaultProxySeed(t *testing.T) {
	p, c := proxied(t, testData(4096))
	run := func() string {
		p.SetFaults(Faults{ErrorRate: 0.5, Seed: 42})
		var seq strings.Builder
		for range 32 {
			status, _, err := get(t, p, c, "bytes=0-99")
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprint(&seq, status, " ")
		}
		return seq.String()
	}
	first, second := run(), run()
	if first != second {
		t.Errorf("same seed, different faults:\n%s\n%s", first, second)
	}
	if !strings.Contains(first, "206") || !strings.Contains(first, "50") {
		t.Errorf("statuses %s: want both faults and clean answers at rate 0.5", first)
	}
}
