package cache_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/source"
)

// TestDownloadMatchesSource: the bytes delivered are the bytes published,
// for a nested tree with empty files, multi-part files with each checksum
// kind, and thousands of small files.
func TestDownloadMatchesSource(t *testing.T) {
	e := newS3Env(t)
	want := map[string][]byte{}
	add := func(dataset, path string, body []byte, alg types.ChecksumAlgorithm) {
		want[dataset+"/"+path] = body
		e.put(t, "rel/"+dataset+"/"+path, bytes.NewReader(body), alg)
	}
	add("model", "weights/big.bin", content("big", 5<<20+12345), types.ChecksumAlgorithmCrc64nvme)
	add("model", "weights/sha.bin", content("sha", 3<<20+7), types.ChecksumAlgorithmSha256)
	add("model", "weights/c32.bin", content("c32", 2<<20+1), types.ChecksumAlgorithmCrc32c)
	add("model", "plain.bin", content("plain", 1<<20+3), "")
	add("model", "deep/a/b/c/d/empty", nil, "")
	add("model", "deep/a/b/c/d/e/empty-with-sum", nil, types.ChecksumAlgorithmCrc64nvme)
	for i := range 2000 {
		add("shards", fmt.Sprintf("s%02d/part-%04d.txt", i%37, i), content(fmt.Sprint(i), i%700), "")
	}
	rel := e.publish(t, "search", "v1", 1, map[string]string{"model": "rel/model/", "shards": "rel/shards/"})
	c := e.newCache(t, t.TempDir())
	if err := ensure(t, c, rel); err != nil {
		t.Fatal(err)
	}
	checkStored(t, c, rel, want)
	if !c.Stored("search", "v1") {
		t.Fatal("Stored = false after Ensure")
	}
	// A second Ensure of a stored release fetches nothing.
	before := e.proxy.BytesServed()
	if err := ensure(t, c, rel); err != nil || e.proxy.BytesServed() != before {
		t.Fatalf("second Ensure: %v, fetched %d bytes", err, e.proxy.BytesServed()-before)
	}
}

// TestOverwrittenObjectRefused: an object changed after publish is refused
// with an error naming it, and nothing is installed.
func TestOverwrittenObjectRefused(t *testing.T) {
	e := newS3Env(t)
	e.put(t, "ow/a.bin", bytes.NewReader(content("a", 3<<20)), "")
	e.put(t, "ow/b.bin", bytes.NewReader(content("b", 1000)), "")
	rel := e.publish(t, "ow", "v1", 1, map[string]string{"data": "ow/"})
	e.put(t, "ow/b.bin", bytes.NewReader(content("b2", 1000)), "")
	c := e.newCache(t, t.TempDir())
	err := ensure(t, c, rel)
	if !errors.Is(err, source.ErrChanged) || !strings.Contains(err.Error(), "s3://data/ow/b.bin") {
		t.Fatalf("Ensure after overwrite: %v; want ErrChanged naming s3://data/ow/b.bin", err)
	}
	if c.Stored("ow", "v1") {
		t.Fatal("a release with a changed object was installed")
	}
}

// TestUnchangedFilesLinked: a release that changes one file of a hundred
// fetches only that file; the others are hardlinks of the stored ones.
func TestUnchangedFilesLinked(t *testing.T) {
	e := newS3Env(t)
	var total int
	for i := range 100 {
		body := content(fmt.Sprint("f", i), 20000+i)
		total += len(body)
		e.put(t, fmt.Sprintf("v1/f%03d", i), bytes.NewReader(body), types.ChecksumAlgorithmCrc64nvme)
		if i == 42 {
			body = content("changed", 30000)
		}
		e.put(t, fmt.Sprintf("v2/f%03d", i), bytes.NewReader(body), types.ChecksumAlgorithmCrc64nvme)
	}
	v1 := e.publish(t, "ch", "v1", 1, map[string]string{"d": "v1/"})
	v2 := e.publish(t, "ch", "v2", 2, map[string]string{"d": "v2/"})
	c := e.newCache(t, t.TempDir())
	if err := ensure(t, c, v1); err != nil {
		t.Fatal(err)
	}
	if got := e.proxy.BytesServed(); got != int64(total) {
		t.Fatalf("v1 fetched %d bytes, want %d", got, total)
	}
	before := e.proxy.BytesServed()
	if err := ensure(t, c, v2); err != nil {
		t.Fatal(err)
	}
	if got := e.proxy.BytesServed() - before; got != 30000 {
		t.Fatalf("v2 fetched %d bytes, want only the changed file's 30000", got)
	}
	for _, i := range []int{0, 41, 43, 99} {
		a, _ := os.Stat(filepath.Join(c.Layout().StoreDir("ch", "v1"), "d", fmt.Sprintf("f%03d", i)))
		b, _ := os.Stat(filepath.Join(c.Layout().StoreDir("ch", "v2"), "d", fmt.Sprintf("f%03d", i)))
		if a == nil || b == nil || !os.SameFile(a, b) {
			t.Fatalf("f%03d of v2 is not a hardlink of v1's", i)
		}
	}
}

// TestSingleFlight: many concurrent Ensure calls for one release cause one
// download.
func TestSingleFlight(t *testing.T) {
	e := newS3Env(t)
	body := content("one", 4<<20)
	e.put(t, "sf/one", bytes.NewReader(body), "")
	rel := e.publish(t, "sf", "v1", 1, map[string]string{"d": "sf/"})
	c := e.newCache(t, t.TempDir())
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- ensure(t, c, rel) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := e.proxy.BytesServed(); got != int64(len(body)) {
		t.Fatalf("8 concurrent Ensure calls fetched %d bytes, want one download of %d", got, len(body))
	}
}

// TestNoSpace: a tmpfs too small for a release gives the space error, and
// the release already stored there (in use) is not evicted.
func TestNoSpace(t *testing.T) {
	e := newS3Env(t)
	root := t.TempDir()
	if err := syscall.Mount("tmpfs", root, "tmpfs", 0, "size=8m"); err != nil {
		t.Fatalf("mount a tmpfs (the tests run as root): %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(root, syscall.MNT_DETACH) })
	e.put(t, "small/a", bytes.NewReader(content("small", 2<<20)), "")
	e.put(t, "large/a", bytes.NewReader(content("large", 12<<20)), "")
	small := e.publish(t, "sp", "v1", 1, map[string]string{"d": "small/"})
	large := e.publish(t, "sp", "v2", 2, map[string]string{"d": "large/"})
	c := e.newCache(t, root)
	if err := ensure(t, c, small); err != nil {
		t.Fatal(err)
	}
	err := ensure(t, c, large)
	if !errors.Is(err, cache.ErrNoSpace) {
		t.Fatalf("Ensure of a 12 MiB release on an 8 MiB tmpfs: %v, want ErrNoSpace", err)
	}
	if c.Stored("sp", "v2") || !c.Stored("sp", "v1") {
		t.Fatalf("after the space error: v1 stored %t, v2 stored %t; want v1 kept, v2 absent", c.Stored("sp", "v1"), c.Stored("sp", "v2"))
	}
	checkStored(t, c, small, map[string][]byte{"d/a": content("small", 2<<20)})
}
