package driver

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// TestUnreachableStoreIsUnavailable reads a range with the real S3 reader
// from stores that cannot serve it (a closed port, a server that accepts
// and never answers) and checks that the error the driver gets maps to
// Unavailable, which kubelet retries, rather than Internal.
func TestUnreachableStoreIsUnavailable(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close() // nothing listens there any more: connection refused

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() }) // holds the connection open, says nothing
		}
	}()

	creds, err := source.NewCredentials("AKIDTEST", "secret", "")
	if err != nil {
		t.Fatal(err)
	}
	src, err := release.ParseSource("s3://bucket/data/")
	if err != nil {
		t.Fatal(err)
	}
	file := release.File{Path: "a.bin", Size: 1024, ETag: `"e"`}
	for _, tc := range []struct{ name, addr string }{
		{"connection refused", closedAddr},
		{"no answer (timeout)", silent.Addr().String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := source.NewS3Reader(t.Context(), source.FetchOptions{
				Endpoint: "http://" + tc.addr, Region: "us-east-1", Credentials: creds,
				MaxAttempts: 2, BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond, StallTimeout: 100 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			err = r.ReadRange(context.Background(), src, file, 0, file.Size, &bytes.Buffer{})
			if err == nil {
				t.Fatal("ReadRange succeeded against a store that cannot answer")
			}
			if got := codeOf(err); got != codes.Unavailable {
				t.Fatalf("codeOf(%v) = %v, want Unavailable", err, got)
			}
		})
	}
}
