package checksum

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hydra-csi/hydra/pkg/release"
)

// ErrMismatch is wrapped by the error Verify returns when the digests differ.
var ErrMismatch = errors.New("checksum: mismatch")

// Digest renders a CRC value (as Sum64 or Combine return it) as the
// big-endian bytes of the algorithm's width, the form Encode and Verify take.
func Digest(algorithm string, crc uint64) ([]byte, error) {
	switch algorithm {
	case release.ChecksumCRC64NVME:
		return binary.BigEndian.AppendUint64(nil, crc), nil
	case release.ChecksumCRC32C:
		if crc > 0xffffffff {
			return nil, fmt.Errorf("checksum: crc32c value %#x exceeds 32 bits", crc)
		}
		return binary.BigEndian.AppendUint32(nil, uint32(crc)), nil
	case release.ChecksumSHA256:
		return nil, fmt.Errorf("checksum: %s is not a CRC", algorithm)
	}
	return nil, unknown(algorithm)
}

// Encode renders a digest (a hash's Sum, or Digest's result) as a manifest
// checksum: the algorithm and the base64 of the big-endian bytes.
func Encode(algorithm string, digest []byte) (release.Checksum, error) {
	if err := checkLength(algorithm, digest); err != nil {
		return release.Checksum{}, err
	}
	return release.Checksum{Algorithm: algorithm, Value: base64.StdEncoding.EncodeToString(digest)}, nil
}

// Decode parses a manifest checksum into its digest bytes, refusing an
// unknown algorithm, bad base64 and a digest of the wrong length.
func Decode(c release.Checksum) ([]byte, error) {
	n := size(c.Algorithm)
	if n == 0 {
		return nil, unknown(c.Algorithm)
	}
	raw, err := base64.StdEncoding.DecodeString(c.Value)
	if err != nil {
		return nil, fmt.Errorf("checksum: %s value %q is not base64: %w", c.Algorithm, short(c.Value), err)
	}
	if len(raw) != n {
		return nil, fmt.Errorf("checksum: %s value %q: digest must be %d bytes, got %d",
			c.Algorithm, short(c.Value), n, len(raw))
	}
	return raw, nil
}

// Verify compares a computed digest with a manifest checksum. On a mismatch
// the error wraps ErrMismatch and names the algorithm, the expected and the
// computed digest, in base64 as manifests and S3 show them and in hex.
func Verify(want release.Checksum, got []byte) error {
	expected, err := Decode(want)
	if err != nil {
		return err
	}
	if err := checkLength(want.Algorithm, got); err != nil {
		return err
	}
	if !bytes.Equal(expected, got) {
		return fmt.Errorf("%w: %s expected %s (%x), got %s (%x)", ErrMismatch, want.Algorithm,
			want.Value, expected, base64.StdEncoding.EncodeToString(got), got)
	}
	return nil
}

func checkLength(algorithm string, digest []byte) error {
	n := size(algorithm)
	if n == 0 {
		return unknown(algorithm)
	}
	if len(digest) != n {
		return fmt.Errorf("checksum: %s digest must be %d bytes, got %d", algorithm, n, len(digest))
	}
	return nil
}

// short caps a value quoted in an error, so a hostile manifest cannot turn
// into a multi-megabyte error line.
func short(s string) string {
	const maxShown = 80
	if len(s) > maxShown {
		return s[:maxShown] + "..."
	}
	return s
}
