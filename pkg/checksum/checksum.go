// Package checksum computes, combines and verifies the full-object digests
// a manifest carries (crc64nvme, crc32c, sha256).
//
// The cache downloads a file in parts and hashes each part while it streams.
// CRCs of parts combine into the CRC of the whole file without re-reading it
// (see Combine); SHA-256 does not combine, so a file checked by SHA-256 is
// re-read once after the download.
package checksum

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"hash/crc32"

	"github.com/minio/crc64nvme"

	"github.com/hydra-csi/hydra/pkg/release"
)

// castagnoli is hash/crc32's table for CRC-32C; MakeTable returns the shared
// table that selects the SSE4.2/ARMv8 instructions where the CPU has them.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// New returns a fresh hash for a manifest algorithm name. Sum lays the
// digest out in big-endian order, as a manifest's Value encodes it.
func New(algorithm string) (hash.Hash, error) {
	switch algorithm {
	case release.ChecksumCRC64NVME:
		return crc64nvme.New(), nil
	case release.ChecksumCRC32C:
		return crc32.New(castagnoli), nil
	case release.ChecksumSHA256:
		return sha256.New(), nil
	}
	return nil, unknown(algorithm)
}

// Combinable reports whether digests of parts of the algorithm can be
// combined into the digest of the whole (crc64nvme, crc32c).
func Combinable(algorithm string) bool {
	return fieldOf(algorithm) != nil
}

// Sum64 returns the CRC value of a crc64nvme or crc32c hash made by New;
// a crc32c value is widened to 64 bits.
func Sum64(h hash.Hash) (uint64, error) {
	switch h := h.(type) {
	case hash.Hash64:
		return h.Sum64(), nil
	case hash.Hash32:
		return uint64(h.Sum32()), nil
	}
	return 0, fmt.Errorf("checksum: %T is not a CRC hash", h)
}

// CRC64NVME returns the crc64nvme of b.
func CRC64NVME(b []byte) uint64 { return crc64nvme.Checksum(b) }

// UpdateCRC64NVME returns the crc64nvme of the bytes crc covers followed by
// b. It does not allocate.
func UpdateCRC64NVME(crc uint64, b []byte) uint64 { return crc64nvme.Update(crc, b) }

// size is the digest length in bytes of an algorithm, 0 if it is unknown.
func size(algorithm string) int {
	switch algorithm {
	case release.ChecksumCRC64NVME:
		return crc64nvme.Size
	case release.ChecksumCRC32C:
		return crc32.Size
	case release.ChecksumSHA256:
		return sha256.Size
	}
	return 0
}

func unknown(algorithm string) error {
	return fmt.Errorf("checksum: unknown algorithm %q (want %s, %s or %s)", algorithm,
		release.ChecksumCRC64NVME, release.ChecksumCRC32C, release.ChecksumSHA256)
}
