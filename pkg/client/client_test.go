package client_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/client"
)

// TestRefusedConnectionRetried: a manager replica that is not listening
// yet (or any more) refuses the connection; the request is sent again
// after a pause and reaches the server once it listens. A server that
// never comes back gives the refusal as the error.
func TestRefusedConnectionRetried(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // refused from now on
	cl, err := client.New("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}

	served := make(chan struct{})
	go func() {
		time.Sleep(300 * time.Millisecond)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("listen again on %s: %v", addr, err)
			close(served)
			return
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })}
		go func() { _ = srv.Serve(l) }()
		<-served
		_ = srv.Close()
	}()
	if err := cl.Healthz(context.Background()); err != nil {
		t.Errorf("Healthz with the server listening after 300ms: %v", err)
	}
	close(served)

	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := l2.Addr().String()
	l2.Close()
	cl2, err := client.New("http://" + gone)
	if err != nil {
		t.Fatal(err)
	}
	err = cl2.Healthz(context.Background())
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Healthz with nothing listening: %v, want the refusal", err)
	}
}

// TestResetGetRetried: a connection reset by a dying replica fails a GET
// once; the client sends it again and gets the answer.
func TestResetGetRetried(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })}
	go func() { _ = srv.Serve(&resetFirst{Listener: l}) }()
	defer srv.Close()
	cl, err := client.New("http://" + l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Healthz(context.Background()); err != nil {
		t.Errorf("Healthz after one reset connection: %v", err)
	}
}

// resetFirst resets the first connection it accepts (RST, as a process
// killed with the connection open).
type resetFirst struct {
	net.Listener
	done bool
}

func (r *resetFirst) Accept() (net.Conn, error) {
	c, err := r.Listener.Accept()
	if err != nil || r.done {
		return c, err
	}
	r.done = true
	buf := make([]byte, 1)
	_, _ = c.Read(buf) // the request has arrived
	_ = c.(*net.TCPConn).SetLinger(0)
	_ = c.Close()
	return r.Listener.Accept()
}

// TestForeignAnswerDropsConnection: an answer that is not the manager's
// (an egress proxy behind a Service address kube-proxy has not programmed
// yet answers 404s in plain text) makes the client drop the connection,
// so the next request opens a new one instead of reaching the proxy
// again; the manager's own error keeps the connection for reuse.
func TestForeignAnswerDropsConnection(t *testing.T) {
	for _, tc := range []struct {
		name      string
		first     func(http.ResponseWriter)
		wantConns int64
	}{
		{"foreign 404", func(w http.ResponseWriter) { http.Error(w, "404 page not found", http.StatusNotFound) }, 2},
		{"the manager's 404", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"code":"not_found","message":"no such thing"}}`))
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var conns, requests atomic.Int64
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if requests.Add(1) == 1 {
					tc.first(w)
					return
				}
				_, _ = w.Write([]byte("ok"))
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			srv.Start()
			defer srv.Close()
			cl, err := client.New(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			if err := cl.Healthz(t.Context()); !client.IsNotFound(err) {
				t.Fatalf("first Healthz: %v, want a 404", err)
			}
			if err := cl.Healthz(t.Context()); err != nil {
				t.Fatalf("second Healthz: %v", err)
			}
			if got := conns.Load(); got != tc.wantConns {
				t.Errorf("%d connections for two requests, want %d", got, tc.wantConns)
			}
		})
	}
}
