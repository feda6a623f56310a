package cache_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sys/unix"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/release"
)

// abandon leaves a partial download of rel in c's tmp/: its files are
// allocated, then one of its objects goes from the bucket and the
// download fails, as one the node gave up on does.
func abandon(t *testing.T, e *s3Env, c *cache.Cache, rel release.Release, gone string) {
	t.Helper()
	if _, err := e.s3.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(gone)}); err != nil {
		t.Fatal(err)
	}
	if err := ensure(t, c, rel); err == nil {
		t.Fatalf("download of %s/%s without its object %s succeeded", rel.Channel, rel.Version, gone)
	}
	if _, err := os.Stat(c.Layout().TmpDir(rel.Channel, rel.Version)); err != nil {
		t.Fatalf("the failed download left no partial download: %v", err)
	}
}

// TestAbandonedPartialGivesSpaceBack: a release that fits only without
// the space an abandoned partial download holds is downloaded; the
// partial goes.
func TestAbandonedPartialGivesSpaceBack(t *testing.T) {
	e := newS3Env(t)
	e.put(t, "big/a", bytes.NewReader(content("big-a", 4<<20)), "")
	e.put(t, "big/b", bytes.NewReader(content("big-b", 5<<20)), "")
	e.put(t, "next/f", bytes.NewReader(content("next", 10<<20)), "")
	abandoned := e.publish(t, "space", "v1", 1, map[string]string{"d": "big/"})
	next := e.publish(t, "space", "v2", 2, map[string]string{"d": "next/"})
	root := t.TempDir()
	if err := unix.Mount("tmpfs", root, "tmpfs", 0, "size=16m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(root, syscall.MNT_DETACH) })
	c := e.newCache(t, root)
	abandon(t, e, c, abandoned, "big/b")

	if err := ensure(t, c, next); err != nil {
		t.Fatalf("a 10 MiB release on a 16 MiB cache holding only an abandoned partial download: %v", err)
	}
	checkStored(t, c, next, map[string][]byte{"d/f": content("next", 10<<20)})
	if _, err := os.Stat(c.Layout().TmpDir("space", "v1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the abandoned partial download is still there: %v", err)
	}
}

// TestSweepPartials: a partial download nothing wrote to for the grace
// period goes; a recent one stays for a resume.
func TestSweepPartials(t *testing.T) {
	e := newS3Env(t)
	e.put(t, "p/a", bytes.NewReader(content("p-a", 2<<20)), "")
	e.put(t, "p/b", bytes.NewReader(content("p-b", 2<<20)), "")
	rel := e.publish(t, "sweep", "v1", 1, map[string]string{"d": "p/"})
	c := e.newCache(t, t.TempDir())
	abandon(t, e, c, rel, "p/b")
	tmp := c.Layout().TmpDir("sweep", "v1")
	for _, tc := range []struct {
		name    string
		age     time.Duration // since the last write
		removed bool
	}{
		{"written within the grace period", time.Minute, false},
		{"untouched for longer", time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			then := time.Now().Add(-tc.age)
			entries, _ := os.ReadDir(tmp)
			for _, p := range append([]string{tmp}, names(tmp, entries)...) {
				if err := os.Chtimes(p, then, then); err != nil {
					t.Fatal(err)
				}
			}
			n, err := c.SweepPartials(10 * time.Minute)
			_, statErr := os.Stat(tmp)
			if err != nil || (n == 1) != tc.removed || errors.Is(statErr, os.ErrNotExist) != tc.removed {
				t.Fatalf("SweepPartials: removed %d, %v; partial there: %v; want removed %t", n, err, statErr, tc.removed)
			}
		})
	}
}

func names(dir string, entries []os.DirEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, filepath.Join(dir, e.Name()))
	}
	return out
}

// TestRemoveChannel: every release of a deleted channel leaves the store
// with its record, except one being linked into a view (held); other
// channels keep theirs.
func TestRemoveChannel(t *testing.T) {
	e := newS3Env(t)
	e.put(t, "r1/f", bytes.NewReader(content("r1", 1<<20)), "")
	e.put(t, "r2/f", bytes.NewReader(content("r2", 1<<20)), "")
	c := e.newCache(t, t.TempDir())
	for _, rel := range []release.Release{
		e.publish(t, "gone", "v1", 1, map[string]string{"d": "r1/"}),
		e.publish(t, "gone", "v2", 2, map[string]string{"d": "r2/"}),
		e.publish(t, "held", "v1", 1, map[string]string{"d": "r1/"}),
		e.publish(t, "kept", "v1", 1, map[string]string{"d": "r2/"}),
	} {
		if err := ensure(t, c, rel); err != nil {
			t.Fatal(err)
		}
	}
	done, err := c.Hold("held", "v1")
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	for _, tc := range []struct {
		channel string
		removed int
		stays   bool
	}{
		{"gone", 2, false},
		{"held", 0, true},
	} {
		removed, err := c.RemoveChannel(tc.channel)
		if err != nil || len(removed) != tc.removed {
			t.Fatalf("RemoveChannel(%s): removed %v, %v; want %d", tc.channel, removed, err, tc.removed)
		}
		_, storeErr := os.Stat(c.Layout().ChannelStoreDir(tc.channel))
		_, metaErr := os.Stat(filepath.Dir(c.Layout().MetaFile(tc.channel, "v1")))
		if gone := errors.Is(storeErr, os.ErrNotExist) && errors.Is(metaErr, os.ErrNotExist); gone == tc.stays {
			t.Errorf("RemoveChannel(%s): store %v, meta %v; want them there %t", tc.channel, storeErr, metaErr, tc.stays)
		}
	}
	if !c.Stored("kept", "v1") {
		t.Error("another channel's release went too")
	}
}
