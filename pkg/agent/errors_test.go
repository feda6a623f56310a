package agent

import (
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/release"
)

// TestErrorKind: a space error, however wrapped, reaches the manager as
// NoSpace (an InsufficientSpace Event); anything else as a plain failure.
func TestErrorKind(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want release.ErrorKind
	}{
		{fmt.Errorf("cache: release c/v needs 9 more bytes: %w", cache.ErrNoSpace), release.ErrorKindNoSpace},
		{fmt.Errorf("cache: memory: load c/v: %w", fmt.Errorf("copy: %w", syscall.ENOSPC)), release.ErrorKindNoSpace},
		{errors.New("s3://b/k: object changed since publish"), release.ErrorKindOther},
		{fmt.Errorf("verify: %w", cache.ErrVerify), release.ErrorKindOther},
	} {
		if got := errorKind(tc.err); got != tc.want {
			t.Errorf("errorKind(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
