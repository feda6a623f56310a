package checksum

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash/crc64"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/pkg/release"
)

// nvmeReflected is the CRC-64/NVME polynomial in the bit-reversed form
// hash/crc64 expects (its ISO constant 0xD800000000000000 is the reversal
// of x^64+x^4+x^3+x+1); 0xAD93D23594C93659 is the same polynomial written
// normally. TestReferenceTableForm pins which one is right.
const nvmeReflected = 0x9A6C9329AC4BC9B5

var nvmeReference = crc64.MakeTable(nvmeReflected)

// randomBytes returns n bytes from a fixed seed.
func randomBytes(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b) // never fails
	return b
}

func digestOf(t testing.TB, algorithm string, data []byte) []byte {
	t.Helper()
	h, err := New(algorithm)
	if err != nil {
		t.Fatal(err)
	}
	h.Write(data)
	return h.Sum(nil)
}

func TestKnownVectors(t *testing.T) {
	tests := []struct {
		algorithm, input, want string
	}{
		{release.ChecksumCRC64NVME, "123456789", "ae8b14860a799888"},
		{release.ChecksumCRC64NVME, "", "0000000000000000"},
		{release.ChecksumCRC32C, "123456789", "e3069283"},
		{release.ChecksumCRC32C, "", "00000000"},
		{release.ChecksumSHA256, "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{release.ChecksumSHA256, "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	}
	for _, tt := range tests {
		t.Run(tt.algorithm+"/"+tt.input, func(t *testing.T) {
			got := digestOf(t, tt.algorithm, []byte(tt.input))
			if hex.EncodeToString(got) != tt.want {
				t.Fatalf("Sum = %x, want %s", got, tt.want)
			}
			if !Combinable(tt.algorithm) {
				return
			}
			h, _ := New(tt.algorithm)
			h.Write([]byte(tt.input))
			crc, err := Sum64(h)
			if err != nil {
				t.Fatal(err)
			}
			if d, _ := Digest(tt.algorithm, crc); !bytes.Equal(d, got) {
				t.Fatalf("Digest(Sum64) = %x, want %x", d, got)
			}
		})
	}
	if got := CRC64NVME([]byte("123456789")); got != 0xAE8B14860A799888 {
		t.Fatalf("CRC64NVME = %#x", got)
	}
}

func TestNewAndSum64Refuse(t *testing.T) {
	for _, alg := range []string{"", "md5", "CRC64NVME", "crc64"} {
		if _, err := New(alg); err == nil || !strings.Contains(err.Error(), "unknown algorithm") {
			t.Errorf("New(%q) error = %v, want unknown algorithm", alg, err)
		}
		if Combinable(alg) {
			t.Errorf("Combinable(%q) = true", alg)
		}
	}
	if Combinable(release.ChecksumSHA256) || !Combinable(release.ChecksumCRC32C) || !Combinable(release.ChecksumCRC64NVME) {
		t.Error("Combinable is wrong for a known algorithm")
	}
	if _, err := Sum64(sha256.New()); err == nil {
		t.Error("Sum64(sha256) succeeded")
	}
}

// TestReferenceTableForm checks that hash/crc64 wants the reflected form:
// only it yields the CRC-64/NVME check value.
func TestReferenceTableForm(t *testing.T) {
	check := []byte("123456789")
	if got := crc64.Checksum(check, nvmeReference); got != 0xAE8B14860A799888 {
		t.Fatalf("reflected table: %#x", got)
	}
	if got := crc64.Checksum(check, crc64.MakeTable(0xAD93D23594C93659)); got == 0xAE8B14860A799888 {
		t.Fatal("the normal form gives the check value too; the test proves nothing")
	}
}

// TestCRC64NVMEMatchesReference compares the SIMD implementation with
// hash/crc64's table-driven one, over lengths and alignments that take each
// of its paths (byte loop, slicing-by-8, 128-byte folding with head and
// tail), in one call and in random increments.
func TestCRC64NVMEMatchesReference(t *testing.T) {
	buf := randomBytes(1, 1<<20+64)
	lengths := []int{0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 127, 128, 129, 255, 256, 1023, 1024, 1025, 4096, 65537, 1 << 20}
	r := rand.New(rand.NewPCG(2, 2))
	for range 200 {
		lengths = append(lengths, r.IntN(3000))
	}
	for _, n := range lengths {
		for _, off := range []int{0, 1, 3, 8, 15} {
			data := buf[off : off+n]
			want := crc64.Checksum(data, nvmeReference)
			if got := CRC64NVME(data); got != want {
				t.Fatalf("len %d offset %d: CRC64NVME = %#x, reference %#x", n, off, got, want)
			}
			var crc uint64
			for rest := data; len(rest) > 0; {
				k := min(len(rest), r.IntN(300))
				crc = UpdateCRC64NVME(crc, rest[:k])
				rest = rest[k:]
			}
			if crc != want {
				t.Fatalf("len %d offset %d: incremental = %#x, reference %#x", n, off, crc, want)
			}
		}
	}
}

// TestNoAllocations guards the cache's per-part hot path.
func TestNoAllocations(t *testing.T) {
	data := randomBytes(3, 4096)
	h, _ := New(release.ChecksumCRC64NVME)
	var sink uint64
	allocs := testing.AllocsPerRun(100, func() {
		sink = UpdateCRC64NVME(sink, data)
		h.Write(data)
		c, _ := Combine(release.ChecksumCRC64NVME, sink, 42, 12<<20)
		c32, _ := Combine(release.ChecksumCRC32C, 1, 2, 12<<20+5)
		sink ^= c ^ c32
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run, want 0", allocs)
	}
}
