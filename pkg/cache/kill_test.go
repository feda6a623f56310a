package cache_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// childEnv, when set, makes the test binary a downloader process: it reads
// a childJob from the file it names, runs one Ensure and exits. The kill
// test spawns it and SIGKILLs it at random points.
const childEnv = "HYDRA_CACHE_TEST_CHILD"

type childJob struct {
	Root     string          `json:"root"`
	Endpoint string          `json:"endpoint"`
	Release  release.Release `json:"release"`
	// High and Low, when set, give the cache a budget whose Needed is
	// Keep ("channel/version" names): the download may evict.
	High, Low int
	Keep      []string
}

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(runChild(path))
	}
	os.Exit(m.Run())
}

func runChild(path string) int {
	raw, err := os.ReadFile(path)
	var job childJob
	if err == nil {
		err = json.Unmarshal(raw, &job)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	r, err := source.NewReader(context.Background(), release.SchemeS3, source.FetchOptions{Endpoint: job.Endpoint})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	c, err := cache.New(cache.Options{Root: job.Root, Reader: r, PartSize: cache.MinPartSize, Requests: 4, CommitInterval: 20 * time.Millisecond})
	if err == nil && job.High > 0 {
		keep := cache.Needed{Disk: keepSet(job.Keep...)}
		err = c.SetBudget(cache.Budget{HighWatermark: job.High, LowWatermark: job.Low, Needed: func() (cache.Needed, error) { return keep, nil }})
	}
	if err == nil {
		err = c.Ensure(context.Background(), job.Release)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// TestKilledDownloadResumes kills the downloader process with SIGKILL at
// random points of a large download, over and over: it must never expose a
// partial release, never fetch again a part it had journaled, and end with
// the exact bytes published.
func TestKilledDownloadResumes(t *testing.T) {
	e := newS3Env(t)
	want := map[string][]byte{"d/large.bin": content("large", 40<<20+333)}
	e.put(t, "kill/large.bin", bytes.NewReader(want["d/large.bin"]), types.ChecksumAlgorithmCrc64nvme)
	for i := range 300 {
		body := content(fmt.Sprint("k", i), 1000+i*37)
		want[fmt.Sprintf("d/small/%03d", i)] = body
		e.put(t, fmt.Sprintf("kill/small/%03d", i), bytes.NewReader(body), "")
	}
	rel := e.publish(t, "kill", "v1", 1, map[string]string{"d": "kill/"})
	// Slow every body down so the download spans many kill points.
	e.proxy.SetFaults(testenv.Faults{SlowRate: 1, SlowDelay: 300 * time.Microsecond, Seed: 7})

	root := t.TempDir()
	jobFile := filepath.Join(t.TempDir(), "job.json")
	raw, _ := json.Marshal(childJob{Root: root, Endpoint: e.proxy.URL, Release: rel})
	if err := os.WriteFile(jobFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	layout := cache.Layout{Root: root}
	rng := rand.New(rand.NewPCG(11, 12))
	kills := 0
	// Kill until the release shows up in store/ (a kill may land after the
	// install, before the process exits: that counts as done too).
	for !storeHas(layout, rel) {
		if kills > 300 {
			t.Fatal("download never finished")
		}
		journaled := readJournal(t, filepath.Join(layout.TmpDir("kill", "v1"), "journal"))
		rangesBefore := len(e.proxy.Ranges())
		// Kill after a random number of new ranged GETs, not after a random
		// time: how far a run gets must not depend on the machine's speed.
		after := rangesBefore + 1 + rng.IntN(40)
		if runChildFor(t, jobFile, func() bool { return len(e.proxy.Ranges()) >= after }) {
			break
		}
		kills++
		checkNotRefetched(t, e.proxy.Ranges()[rangesBefore:], journaled, rel)
		checkNoPartial(t, layout, rel, want)
	}
	if kills < 3 {
		t.Fatalf("only %d kills landed before the download finished; the test did not exercise resume", kills)
	}
	// Once installed, another run fetches nothing and succeeds.
	rangesBefore := len(e.proxy.Ranges())
	if !runChildFor(t, jobFile, nil) || len(e.proxy.Ranges()) != rangesBefore {
		t.Fatal("a run after the install fetched data again or failed")
	}
	c := e.newCache(t, root)
	checkStored(t, c, rel, want)
	t.Logf("%d kills before completion", kills)
}

// runChildFor starts a downloader and SIGKILLs it once kill reports true
// (polled every 2 ms; nil never kills) unless it ends first; it reports
// whether the download finished.
func runChildFor(t *testing.T, jobFile string, kill func() bool) bool {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+jobFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("downloader failed: %v: %s", err, stderr.String())
			}
			return true
		case <-tick.C:
			if kill == nil || !kill() {
				continue
			}
			_ = cmd.Process.Signal(syscall.SIGKILL)
			err := <-done
			return err == nil
		}
	}
}

// readJournal returns the parts a journal vouches for (file index, part).
func readJournal(t *testing.T, path string) map[[2]int]bool {
	t.Helper()
	out := map[[2]int]bool{}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 4 && fields[0] == "p" {
			file, _ := strconv.Atoi(fields[1])
			part, _ := strconv.Atoi(fields[2])
			out[[2]int{file, part}] = true
		}
	}
	return out
}

// checkNotRefetched fails if a run requested a range of a part that the
// journal already vouched for when the run started.
func checkNotRefetched(t *testing.T, ranges []testenv.RangeRequest, journaled map[[2]int]bool, rel release.Release) {
	t.Helper()
	index := map[string]int{}
	i := 0
	for _, ds := range rel.Datasets {
		src, _ := release.ParseSource(ds.Source)
		for _, f := range ds.Manifest.Files {
			index["/"+bucket+"/"+src.Prefix+f.Path] = i
			i++
		}
	}
	for _, r := range ranges {
		file, ok := index[r.Path]
		if !ok {
			continue
		}
		part := int(r.Start / cache.MinPartSize)
		if journaled[[2]int{file, part}] {
			t.Fatalf("part %d of %s was fetched again though the journal had it", part, r.Path)
		}
	}
}

// checkNoPartial: after a kill, the release is either absent from store/
// or complete and correct.
func checkNoPartial(t *testing.T, l cache.Layout, rel release.Release, want map[string][]byte) {
	t.Helper()
	dir := l.StoreDir(rel.Channel, rel.Version)
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return
	}
	n := 0
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	if n != len(want) {
		t.Fatalf("store holds %d of %d files of a release after a kill: a partial release is visible", n, len(want))
	}
}

func storeHas(l cache.Layout, rel release.Release) bool {
	_, err := os.Stat(l.StoreDir(rel.Channel, rel.Version))
	return err == nil
}
