package checksum

import (
	"fmt"
	"testing"

	"github.com/hydra-csi/hydra/pkg/release"
)

// partSize is the largest part the cache downloads.
const partSize = 16 << 20

func benchmarkHash(b *testing.B, algorithm string) {
	data := randomBytes(60, partSize)
	h, err := New(algorithm)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(partSize)
	b.ReportAllocs()
	for b.Loop() {
		h.Reset()
		h.Write(data)
	}
}

func BenchmarkCRC64NVME(b *testing.B) { benchmarkHash(b, release.ChecksumCRC64NVME) }
func BenchmarkCRC32C(b *testing.B)    { benchmarkHash(b, release.ChecksumCRC32C) }
func BenchmarkSHA256(b *testing.B)    { benchmarkHash(b, release.ChecksumSHA256) }

// BenchmarkCombine folds one part of lenB bytes into a running CRC, as the
// cache does per part; the MB/s are of file covered per second of
// combining. 8 MiB and 16 MiB are single powers of two; 12 MiB and the odd
// length need 2 and 19 multiplications.
func BenchmarkCombine(b *testing.B) {
	for _, alg := range crcAlgorithms {
		for _, lenB := range []int64{8 << 20, 12 << 20, partSize, partSize - 12345} {
			b.Run(fmt.Sprintf("%s/%d", alg, lenB), func(b *testing.B) {
				b.SetBytes(lenB)
				b.ReportAllocs()
				crc := uint64(0x1234)
				for b.Loop() {
					c, err := Combine(alg, crc, 0x5678, lenB)
					if err != nil {
						b.Fatal(err)
					}
					crc = c
				}
			})
		}
	}
}
