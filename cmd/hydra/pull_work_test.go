package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestPullRefusesPlantedWorkDir: a symlink (or a file) planted where pull
// keeps its hidden work directory is refused, and nothing is written
// where the symlink points.
func TestPullRefusesPlantedWorkDir(t *testing.T) {
	h := newHarness(t)
	h.createChannel("pulled")
	fd := newFileData(t)
	h.ok("publish", "pulled", "--dataset", "data="+fd.dataURI, "--version", "v1")

	parent := t.TempDir()
	victim := t.TempDir()
	dir := filepath.Join(parent, "out")
	work := filepath.Join(parent, ".out.hydra-pull")
	if err := os.Symlink(victim, work); err != nil {
		t.Fatal(err)
	}
	h.fails([]string{"pull", "pulled", dir}, work, "is a symlink")
	if entries, _ := os.ReadDir(victim); len(entries) != 0 {
		t.Errorf("pull wrote %d entries into the symlink's target %s", len(entries), victim)
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Errorf("%s exists after a refused pull: %v", dir, err)
	}

	if err := os.Remove(work); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(work, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	h.fails([]string{"pull", "pulled", dir}, work, "not a directory")

	// Without anything planted the same pull works.
	if err := os.Remove(work); err != nil {
		t.Fatal(err)
	}
	h.ok("pull", "pulled", dir)
	if _, err := os.Stat(filepath.Join(dir, "data", "a.txt")); err != nil {
		t.Errorf("pull did not deliver data/a.txt: %v", err)
	}
}
