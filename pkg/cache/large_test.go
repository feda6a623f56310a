package cache_test

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// pattern is a seekable stream of size pseudo-random bytes: block i is a
// ChaCha8 stream seeded by i, so any offset can be produced without
// holding the stream in memory, and no run of it is sparse or repetitive.
type pattern struct {
	size, off int64
	block     []byte
	blockIdx  int64
}

const patternBlock = 1 << 16

func newPattern(size int64) *pattern { return &pattern{size: size, blockIdx: -1} }

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.size {
		return 0, io.EOF
	}
	idx := p.off / patternBlock
	if idx != p.blockIdx {
		var seed [32]byte
		binary.LittleEndian.PutUint64(seed[:], uint64(idx))
		if p.block == nil {
			p.block = make([]byte, patternBlock)
		}
		_, _ = rand.NewChaCha8(seed).Read(p.block)
		p.blockIdx = idx
	}
	in := p.off % patternBlock
	n := copy(b, p.block[in:min(int64(patternBlock), in+p.size-p.off)])
	p.off += int64(n)
	return n, nil
}

func (p *pattern) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += p.off
	case io.SeekEnd:
		offset += p.size
	}
	if offset < 0 {
		return 0, errors.New("pattern: negative offset")
	}
	p.off = offset
	return offset, nil
}

// TestMultiGiBFile: a file larger than 2 GiB (past every 32-bit offset)
// arrives byte for byte, verified against S3's CRC64NVME.
func TestMultiGiBFile(t *testing.T) {
	const size = 2<<30 + 12345
	e := newS3Env(t)
	e.put(t, "huge/blob.bin", newPattern(size), types.ChecksumAlgorithmCrc64nvme)
	rel := e.publish(t, "huge", "v1", 1, map[string]string{"d": "huge/"})
	if f := rel.Datasets[0].Manifest.Files[0]; f.Size != size || f.Checksum == nil {
		t.Fatalf("manifest entry %+v: want %d bytes with a checksum", f, size)
	}
	c := e.newCache(t, t.TempDir())
	if err := ensure(t, c, rel); err != nil {
		t.Fatal(err)
	}
	want := sha256.New()
	if _, err := io.Copy(want, newPattern(size)); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(c.Layout().StoreDir("huge", "v1"), "d", "blob.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := sha256.New()
	n, err := io.Copy(got, f)
	if err != nil || n != size || string(got.Sum(nil)) != string(want.Sum(nil)) {
		t.Fatalf("stored file: %d bytes (%v), digest match %t", n, err, string(got.Sum(nil)) == string(want.Sum(nil)))
	}
}
