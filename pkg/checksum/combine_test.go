package checksum

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/pkg/release"
)

var crcAlgorithms = []string{release.ChecksumCRC64NVME, release.ChecksumCRC32C}

func crcOf(t testing.TB, algorithm string, data []byte) uint64 {
	t.Helper()
	h, err := New(algorithm)
	if err != nil {
		t.Fatal(err)
	}
	h.Write(data)
	crc, err := Sum64(h)
	if err != nil {
		t.Fatal(err)
	}
	return crc
}

func combine(t testing.TB, algorithm string, crcA, crcB uint64, lenB int) uint64 {
	t.Helper()
	crc, err := Combine(algorithm, crcA, crcB, int64(lenB))
	if err != nil {
		t.Fatal(err)
	}
	return crc
}

// checkSplit checks Combine(crc(A), crc(B), len(B)) == crc(A‖B) for
// A = data[:cut], B = data[cut:].
func checkSplit(t testing.TB, algorithm string, data []byte, cut int) {
	t.Helper()
	a, b := data[:cut], data[cut:]
	got := combine(t, algorithm, crcOf(t, algorithm, a), crcOf(t, algorithm, b), len(b))
	if want := crcOf(t, algorithm, data); got != want {
		t.Fatalf("%s: len(A)=%d len(B)=%d: Combine = %#x, crc(A‖B) = %#x", algorithm, len(a), len(b), got, want)
	}
}

func TestCombine(t *testing.T) {
	const mib = 1 << 20
	small := []int{0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 127, 128, 129, 255, 256, 4095, 4096, 4097}
	var pairs [][2]int
	for _, a := range small {
		for _, b := range small {
			pairs = append(pairs, [2]int{a, b})
		}
	}
	// Part-sized B (the cache's parts are 8–16 MiB) after short and
	// part-sized A, around the power-of-two boundaries.
	for _, b := range []int{8*mib - 1, 8 * mib, 8*mib + 1, 12 * mib, 16*mib - 1, 16 * mib, 16*mib + 1} {
		pairs = append(pairs, [2]int{0, b}, [2]int{1, b}, [2]int{16 * mib, b}, [2]int{b, 7})
	}
	data := randomBytes(10, 32*mib+2)
	for _, alg := range crcAlgorithms {
		t.Run(alg, func(t *testing.T) {
			for _, p := range pairs {
				checkSplit(t, alg, data[:p[0]+p[1]], p[0])
			}
		})
	}
}

// TestCombineParts splits data into random parts, some empty, and folds the
// part CRCs left to right as the cache does; the result must be the CRC of
// the whole.
func TestCombineParts(t *testing.T) {
	r := rand.New(rand.NewPCG(20, 20))
	data := randomBytes(21, 3<<20)
	for _, alg := range crcAlgorithms {
		t.Run(alg, func(t *testing.T) {
			for trial := range 100 {
				size := r.IntN(len(data) + 1)
				if trial%10 == 0 {
					size = r.IntN(100) // short files with many empty parts
				}
				file := data[:size]
				nparts := 1 + r.IntN(64)
				cuts := []int{0, size}
				for range nparts - 1 {
					cuts = append(cuts, r.IntN(size+1))
				}
				slices.Sort(cuts)
				var crc uint64
				for i := 1; i < len(cuts); i++ {
					part := file[cuts[i-1]:cuts[i]]
					crc = combine(t, alg, crc, crcOf(t, alg, part), len(part))
				}
				if want := crcOf(t, alg, file); crc != want {
					t.Fatalf("trial %d: %d bytes in parts %v: combined %#x, whole %#x", trial, size, cuts, crc, want)
				}
			}
		})
	}
}

// TestCombineLongLengths reaches the operators for lengths no test can
// write out (up to 2^63-1 bytes) through an identity: combining is
// associative, so (A‖B)‖C and A‖(B‖C) must agree for any CRCs and lengths.
// A wrong power x^(8·2^k) for any k breaks it for lengths using bit k.
func TestCombineLongLengths(t *testing.T) {
	r := rand.New(rand.NewPCG(30, 30))
	for _, alg := range crcAlgorithms {
		mask := fieldOf(alg).mask
		t.Run(alg, func(t *testing.T) {
			for trial := range 2000 {
				total := r.Int64() // up to 2^63-1
				if trial < 63 {
					total = int64(uint64(1)<<(trial+1) - 1) // bits 0..trial all set
				}
				lenB := int64(r.Uint64N(uint64(total) + 1))
				lenC := total - lenB
				a, b, c := r.Uint64()&mask, r.Uint64()&mask, r.Uint64()&mask
				left := mustCombine(t, alg, mustCombine(t, alg, a, b, lenB), c, lenC)
				right := mustCombine(t, alg, a, mustCombine(t, alg, b, c, lenC), total)
				if left != right {
					t.Fatalf("lenB=%d lenC=%d: (A‖B)‖C = %#x, A‖(B‖C) = %#x", lenB, lenC, left, right)
				}
			}
		})
	}
}

// TestCombineZeros checks long runs of zero bytes against the data path:
// crc(Z_2n) = Combine(crc(Z_n), crc(Z_n), n), starting from a written run.
func TestCombineZeros(t *testing.T) {
	zeros := make([]byte, 1<<16)
	for _, alg := range crcAlgorithms {
		t.Run(alg, func(t *testing.T) {
			crc, n := crcOf(t, alg, zeros[:1]), int64(1)
			for n < 1<<40 {
				crc, n = mustCombine(t, alg, crc, crc, n), 2*n
				if n <= int64(len(zeros)) {
					if want := crcOf(t, alg, zeros[:n]); crc != want {
						t.Fatalf("%d zero bytes: %#x, want %#x", n, crc, want)
					}
				}
			}
			// Again another way: 256 written runs of 2^16 make 2^24 bytes,
			// doubled 16 times.
			part, whole := crcOf(t, alg, zeros), uint64(0)
			for range 256 {
				whole = mustCombine(t, alg, whole, part, 1<<16)
			}
			for m := int64(1 << 24); m < 1<<40; m *= 2 {
				whole = mustCombine(t, alg, whole, whole, m)
			}
			if whole != crc {
				t.Fatalf("2^40 zero bytes two ways: %#x and %#x", whole, crc)
			}
		})
	}
}

func mustCombine(t testing.TB, alg string, a, b uint64, lenB int64) uint64 {
	t.Helper()
	crc, err := Combine(alg, a, b, lenB)
	if err != nil {
		t.Fatal(err)
	}
	return crc
}

func TestCombineRefuses(t *testing.T) {
	tests := []struct {
		algorithm  string
		crcA, crcB uint64
		lenB       int64
		want       string
	}{
		{"md5", 0, 0, 1, `unknown algorithm "md5"`},
		{release.ChecksumSHA256, 0, 0, 1, "sha256 digests do not combine"},
		{release.ChecksumCRC64NVME, 0, 0, -1, "negative length -1"},
		{release.ChecksumCRC32C, 1 << 32, 0, 1, "exceeds 32 bits"},
		{release.ChecksumCRC32C, 0, 1 << 40, 1, "exceeds 32 bits"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.algorithm, tt.lenB), func(t *testing.T) {
			_, err := Combine(tt.algorithm, tt.crcA, tt.crcB, tt.lenB)
			if err == nil || !strings.HasPrefix(err.Error(), "checksum: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// FuzzCombine: for any A and B, Combine(crc(A), crc(B), len(B)) == crc(A‖B).
func FuzzCombine(f *testing.F) {
	f.Add([]byte{}, []byte{})
	f.Add([]byte("12345"), []byte("6789"))
	f.Add([]byte{0}, []byte{})
	f.Add([]byte{}, []byte{0xff})
	f.Add(randomBytes(40, 200), randomBytes(41, 129))
	f.Add(randomBytes(42, 1), randomBytes(43, 4097))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		whole := append(append([]byte{}, a...), b...)
		for _, alg := range crcAlgorithms {
			checkSplit(t, alg, whole, len(a))
		}
	})
}
