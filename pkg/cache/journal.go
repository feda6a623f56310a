package cache

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// partKey names one part of one file of a release: the file's index in the
// release's flattened file list and the part's index within the file.
type partKey struct {
	file, part int
}

// journal records, in tmp/, the parts of a download that are written,
// durable and hashed, so that a restarted download skips them. Lines:
//
//	p FILE PART CRC [NODE]  part done, CRC of its bytes (hex); NODE is
//	                        the peer it came from, absent for the origin
//	x FILE                  file failed verification: forget its parts
//
// A line is appended only after the part's bytes were synced (see
// committer), so a line never vouches for bytes that a crash could lose.
// A torn last line (a crash mid-append) is ignored on load.
type journal struct {
	f *os.File
	w *bufio.Writer
}

// loadJournal reads the journal at path (if any) and opens it for
// appending. It returns the parts done and, of those, the ones a peer
// sent, by the peer's node name.
func loadJournal(path string) (*journal, map[partKey]uint64, map[partKey]string, error) {
	done, from := map[partKey]uint64{}, map[partKey]string{}
	if raw, err := os.ReadFile(path); err == nil {
		parseJournal(string(raw), done, from)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil, fmt.Errorf("cache: read journal %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cache: open journal %s: %w", path, err)
	}
	return &journal{f: f, w: bufio.NewWriter(f)}, done, from, nil
}

func parseJournal(raw string, done map[partKey]uint64, from map[partKey]string) {
	lines := strings.Split(raw, "\n")
	// Only newline-terminated lines count; the last element is either ""
	// or a torn line.
	for _, line := range lines[:len(lines)-1] {
		fields := strings.Fields(line)
		switch {
		case (len(fields) == 4 || len(fields) == 5) && fields[0] == "p":
			file, err1 := strconv.Atoi(fields[1])
			part, err2 := strconv.Atoi(fields[2])
			crc, err3 := strconv.ParseUint(fields[3], 16, 64)
			if err1 == nil && err2 == nil && err3 == nil {
				k := partKey{file, part}
				done[k] = crc
				delete(from, k)
				if len(fields) == 5 {
					from[k] = fields[4]
				}
			}
		case len(fields) == 2 && fields[0] == "x":
			file, err := strconv.Atoi(fields[1])
			if err == nil {
				for k := range done {
					if k.file == file {
						delete(done, k)
						delete(from, k)
					}
				}
			}
		}
	}
}

// appendParts writes part lines and syncs the journal.
func (j *journal) appendParts(parts []partDone) error {
	for _, p := range parts {
		// bufio.Writer keeps its first write error and Flush returns it.
		if p.from != "" {
			_, _ = fmt.Fprintf(j.w, "p %d %d %016x %s\n", p.key.file, p.key.part, p.crc, p.from)
			continue
		}
		_, _ = fmt.Fprintf(j.w, "p %d %d %016x\n", p.key.file, p.key.part, p.crc)
	}
	return j.flush()
}

// forget records that a file's parts must be downloaded again.
func (j *journal) forget(file int) error {
	_, _ = fmt.Fprintf(j.w, "x %d\n", file)
	return j.flush()
}

func (j *journal) flush() error {
	if err := j.w.Flush(); err != nil {
		return fmt.Errorf("cache: write journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("cache: sync journal: %w", err)
	}
	return nil
}

func (j *journal) Close() error {
	err := j.w.Flush()
	return errors.Join(err, j.f.Close())
}

var _ io.Closer = (*journal)(nil)
