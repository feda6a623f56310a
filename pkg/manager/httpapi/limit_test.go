package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestPublishTurnEndsWithItsRequest: a large publish waits for a turn only
// as long as its request lasts, and then is refused as unavailable; a
// small one never waits.
func TestPublishTurnEndsWithItsRequest(t *testing.T) {
	l, err := newPublishLimiter(1, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	request := func(ctx context.Context, size int64) *http.Request {
		r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/channels/c/releases", strings.NewReader(""))
		r.ContentLength = size
		return r
	}
	holder, err := l.acquire(request(context.Background(), LargePublishBody+1))
	if err != nil {
		t.Fatal(err)
	}
	defer holder()
	if done, err := l.acquire(request(context.Background(), LargePublishBody)); err != nil {
		t.Fatalf("a small publish waited: %v", err)
	} else {
		done()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, size := range []int64{LargePublishBody + 1, -1} { // -1: length unknown
		_, err = l.acquire(request(ctx, size))
		var he *httpError
		if !errors.As(err, &he) || he.status != http.StatusServiceUnavailable {
			t.Fatalf("a large publish (%d bytes) whose request ended while waiting: %v, want 503", size, err)
		}
	}
}
