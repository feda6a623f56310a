package cache

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/hydra-csi/hydra/pkg/checksum"
)

// verifyFiles checks every downloaded file against its manifest entry:
// its size on disk, and its checksum when the manifest has one — combined
// from the part CRCs for CRC algorithms, re-read for SHA-256. A file that
// fails is forgotten in the journal and removed. When peers sent parts of
// it, they are blamed (blameLiars) and the file is returned to be fetched
// again from the origin; otherwise the error names it, and the next
// attempt fetches it again.
func (c *Cache) verifyFiles(run *fetchRun, files []plannedFile, done map[partKey]uint64, j *journal) ([]int, error) {
	var again []int
	for _, f := range files {
		if f.linkFrom != "" {
			continue // a stored file, verified when its release was installed
		}
		err := c.verifyFile(f, done)
		if err == nil {
			continue
		}
		if jerr := run.forgetFile(f, done, j); jerr != nil {
			return nil, jerr
		}
		_ = os.Remove(f.path)
		run.mu.Lock()
		suspect := run.suspect[f.idx]
		run.mu.Unlock()
		if !errors.Is(err, ErrVerify) {
			return nil, err
		}
		if blamed := c.blameLiars(run, f, err); !blamed && !suspect {
			return nil, err
		}
		again = append(again, f.idx)
	}
	return again, nil
}

func (c *Cache) verifyFile(f plannedFile, done map[partKey]uint64) error {
	st, err := os.Stat(f.path)
	if err != nil {
		return fmt.Errorf("verify %s: %w", f.name(), err)
	}
	if st.Size() != f.file.Size {
		return fmt.Errorf("size mismatch on %s: %d bytes, manifest says %d: %w", f.name(), st.Size(), f.file.Size, ErrVerify)
	}
	for p := range f.parts {
		if _, ok := done[partKey{f.idx, p}]; !ok {
			return fmt.Errorf("part %d of %s missing after download: %w", p, f.name(), ErrVerify)
		}
	}
	if f.file.Checksum == nil {
		return nil
	}
	got, err := c.digest(f, done)
	if err != nil {
		return err
	}
	if err := checksum.Verify(*f.file.Checksum, got); err != nil {
		return fmt.Errorf("%s: %w (%w)", f.name(), err, ErrVerify)
	}
	return nil
}

// digest computes a file's digest in the manifest's algorithm.
func (c *Cache) digest(f plannedFile, done map[partKey]uint64) ([]byte, error) {
	alg := f.file.Checksum.Algorithm
	if alg == f.alg && f.parts > 0 {
		crc := done[partKey{f.idx, 0}]
		for p := 1; p < f.parts; p++ {
			var err error
			crc, err = checksum.Combine(alg, crc, done[partKey{f.idx, p}], partLen(f.file.Size, c.partSize, p))
			if err != nil {
				return nil, err
			}
		}
		return checksum.Digest(alg, crc)
	}
	// Not combinable (SHA-256), or an empty file: hash the bytes on disk.
	h, err := checksum.New(alg)
	if err != nil {
		return nil, err
	}
	in, err := os.Open(f.path)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", f.name(), err)
	}
	_, err = io.Copy(h, in)
	if err = errors.Join(err, in.Close()); err != nil {
		return nil, fmt.Errorf("verify %s: %w", f.name(), err)
	}
	return h.Sum(nil), nil
}
