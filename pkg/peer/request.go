package peer

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
)

// httpError is a refusal: the status and the one line that says which
// field was wrong and how.
type httpError struct {
	status int
	msg    string
}

func refusal(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// maxShown caps a client's value quoted back in an error line.
const maxShown = 80

func shown(v string) string {
	if len(v) > maxShown {
		v = v[:maxShown] + "..."
	}
	return strconv.Quote(v)
}

// parseRequest reads everything a request names, and refuses it unless
// every part is valid: nothing reaches the Store before this passes.
func parseRequest(r *http.Request, maxWait time.Duration) (RangeRequest, time.Duration, *httpError) {
	var req RangeRequest
	if r.URL.RawQuery != "" {
		return req, 0, refusal(http.StatusBadRequest, "query %s: peer requests have none", shown(r.URL.RawQuery))
	}
	if herr := parsePath(r.URL.EscapedPath(), &req); herr != nil {
		return req, 0, herr
	}
	var herr *httpError
	if req.Off, req.N, herr = parseRange(r.Header.Values("Range")); herr != nil {
		return req, 0, herr
	}
	if req.Identity, herr = parseIdentity(r.Header.Get(HeaderIdentity)); herr != nil {
		return req, 0, herr
	}
	wait, herr := parseWait(r.Header.Get(HeaderWait), maxWait)
	return req, wait, herr
}

// parsePath reads /v1/peer/releases/{channel}/{release}/{dataset}/{path...}.
// Each segment is unescaped on its own, so an encoded "/" cannot move a
// boundary and an encoded ".." is still "..", which ValidatePath refuses.
func parsePath(escaped string, req *RangeRequest) *httpError {
	rest, ok := strings.CutPrefix(escaped, PathPrefix)
	if !ok {
		return refusal(http.StatusNotFound, "path %s: peer requests start with %s", shown(escaped), PathPrefix)
	}
	segs := strings.Split(rest, "/")
	if len(segs) < 4 {
		return refusal(http.StatusBadRequest, "path %s: want %s{channel}/{release}/{dataset}/{file path}", shown(escaped), PathPrefix)
	}
	for i, s := range segs {
		u, err := url.PathUnescape(s)
		if err != nil || strings.Contains(u, "/") {
			return refusal(http.StatusBadRequest, "path %s: segment %s is not a valid escaped path segment", shown(escaped), shown(s))
		}
		segs[i] = u
	}
	req.Channel, req.Version, req.Dataset = segs[0], segs[1], segs[2]
	req.Path = strings.Join(segs[3:], "/")
	for _, check := range []struct {
		field string
		err   error
	}{
		{"channel", release.ValidateChannelName(req.Channel)},
		{"release", release.ValidateVersion(req.Version)},
		{"dataset", release.ValidateDatasetName(req.Dataset)},
		{"file", release.ValidatePath(req.Path)},
	} {
		if check.err != nil {
			return refusal(http.StatusBadRequest, "%s: %v", check.field, check.err)
		}
	}
	return nil
}

// parseRange reads the one Range header, "bytes=FIRST-LAST" with both
// ends given: no suffix, open or multiple ranges (a part is always one
// known span, so anything else is a broken client).
func parseRange(vals []string) (off, n int64, herr *httpError) {
	const want = "want bytes=FIRST-LAST, one range with both ends"
	switch len(vals) {
	case 0:
		return 0, 0, refusal(http.StatusBadRequest, "Range: missing; %s", want)
	case 1:
	default:
		return 0, 0, refusal(http.StatusBadRequest, "Range: given %d times; %s", len(vals), want)
	}
	spec, ok := strings.CutPrefix(vals[0], "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, 0, refusal(http.StatusBadRequest, "Range %s: %s", shown(vals[0]), want)
	}
	a, b, _ := strings.Cut(spec, "-")
	first, okA := parseDigits(a)
	last, okB := parseDigits(b)
	switch {
	case !okA || !okB:
		return 0, 0, refusal(http.StatusBadRequest, "Range %s: %s", shown(vals[0]), want)
	case last < first:
		return 0, 0, refusal(http.StatusBadRequest, "Range %s: the last byte is before the first", shown(vals[0]))
	case last == math.MaxInt64:
		return 0, 0, refusal(http.StatusBadRequest, "Range %s: the last byte is too large", shown(vals[0]))
	}
	return first, last - first + 1, nil
}

// parseDigits reads a non-negative decimal int64: digits only (no sign,
// no space), which strconv alone would let through.
func parseDigits(s string) (int64, bool) {
	if s == "" || len(s) > 19 || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

// parseIdentity reads "<seq>@<RFC 3339 time with nanoseconds>"; absent is
// the zero identity (whatever is stored under the name).
func parseIdentity(v string) (release.Identity, *httpError) {
	if v == "" {
		return release.Identity{}, nil
	}
	seq, at, ok := strings.Cut(v, "@")
	n, errSeq := strconv.ParseUint(seq, 10, 64)
	t, err := time.Parse(time.RFC3339Nano, at)
	if !ok || seq == "" || strings.Trim(seq, "0123456789") != "" || errSeq != nil || err != nil {
		return release.Identity{}, refusal(http.StatusBadRequest, "%s %s: want <seq>@<RFC 3339 time>", HeaderIdentity, shown(v))
	}
	return release.Identity{Seq: n, CreatedAt: t}, nil
}

// FormatIdentity is id as HeaderIdentity carries it.
func FormatIdentity(id release.Identity) string {
	return strconv.FormatUint(id.Seq, 10) + "@" + id.CreatedAt.UTC().Format(time.RFC3339Nano)
}

// parseWait reads milliseconds; absent is 0, more than maxWait is maxWait.
func parseWait(v string, maxWait time.Duration) (time.Duration, *httpError) {
	if v == "" {
		return 0, nil
	}
	if strings.Trim(v, "0123456789") != "" {
		return 0, refusal(http.StatusBadRequest, "%s %s: want milliseconds, 0 to %d", HeaderWait, shown(v), maxWait.Milliseconds())
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms > maxWait.Milliseconds() {
		// Only digits: a value too large for int64 is too large a wait.
		return maxWait, nil
	}
	return time.Duration(ms) * time.Millisecond, nil
}
