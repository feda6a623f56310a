package checksum

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/pkg/release"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	data := randomBytes(50, 1000)
	for _, alg := range []string{release.ChecksumCRC64NVME, release.ChecksumCRC32C, release.ChecksumSHA256} {
		t.Run(alg, func(t *testing.T) {
			digest := digestOf(t, alg, data)
			c, err := Encode(alg, digest)
			if err != nil {
				t.Fatal(err)
			}
			// What Encode writes, a manifest must accept.
			if err := c.Validate(); err != nil {
				t.Fatalf("release refuses %+v: %v", c, err)
			}
			got, err := Decode(c)
			if err != nil || !bytes.Equal(got, digest) {
				t.Fatalf("Decode(%+v) = %x, %v; want %x", c, got, err, digest)
			}
			if err := Verify(c, digest); err != nil {
				t.Fatalf("Verify of the same digest: %v", err)
			}
		})
	}
}

func TestEncodeKnownValue(t *testing.T) {
	// The value S3 reports as x-amz-checksum-crc64nvme for "123456789".
	c, err := Encode(release.ChecksumCRC64NVME, digestOf(t, release.ChecksumCRC64NVME, []byte("123456789")))
	if err != nil || c.Value != "rosUhgp5mIg=" {
		t.Fatalf("Encode = %+v, %v; want rosUhgp5mIg=", c, err)
	}
}

func TestDigest(t *testing.T) {
	tests := []struct {
		algorithm string
		crc       uint64
		want      []byte
		err       string
	}{
		{release.ChecksumCRC64NVME, 0xAE8B14860A799888, []byte{0xae, 0x8b, 0x14, 0x86, 0x0a, 0x79, 0x98, 0x88}, ""},
		{release.ChecksumCRC32C, 0xE3069283, []byte{0xe3, 0x06, 0x92, 0x83}, ""},
		{release.ChecksumCRC32C, 1 << 32, nil, "exceeds 32 bits"},
		{release.ChecksumSHA256, 1, nil, "sha256 is not a CRC"},
		{"crc16", 1, nil, "unknown algorithm"},
	}
	for _, tt := range tests {
		t.Run(tt.algorithm, func(t *testing.T) {
			got, err := Digest(tt.algorithm, tt.crc)
			if !bytes.Equal(got, tt.want) || !errorContains(err, tt.err) {
				t.Fatalf("Digest = %x, %v; want %x, error %q", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	tests := []struct {
		name string
		in   release.Checksum
		want string
	}{
		{"crc64nvme short", release.Checksum{Algorithm: "crc64nvme", Value: "4wadgw=="}, "crc64nvme value \"4wadgw==\": digest must be 8 bytes, got 4"},
		{"crc64nvme long", release.Checksum{Algorithm: "crc64nvme", Value: "AAAAAAAAAAAA"}, "must be 8 bytes, got 9"},
		{"crc32c long", release.Checksum{Algorithm: "crc32c", Value: "rosUhgp5mIg="}, "must be 4 bytes, got 8"},
		{"crc32c empty", release.Checksum{Algorithm: "crc32c", Value: ""}, "must be 4 bytes, got 0"},
		{"sha256 short", release.Checksum{Algorithm: "sha256", Value: "rosUhgp5mIg="}, "must be 32 bytes, got 8"},
		{"bad base64", release.Checksum{Algorithm: "crc32c", Value: "4wad gw=="}, "is not base64"},
		{"unpadded", release.Checksum{Algorithm: "crc32c", Value: "4wadgw"}, "is not base64"},
		{"unknown algorithm", release.Checksum{Algorithm: "md5", Value: "AAAAAAAAAAAAAAAAAAAAAA=="}, `unknown algorithm "md5"`},
		{"long value quoted short", release.Checksum{Algorithm: "crc32c", Value: strings.Repeat("A", 4000)}, "AAA...\": digest must be 4 bytes, got 3000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.in)
			if got != nil || !errorContains(err, tt.want) || !strings.HasPrefix(err.Error(), "checksum: ") {
				t.Fatalf("Decode = %x, %v; want error containing %q", got, err, tt.want)
			}
			if len(err.Error()) > 200 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
		})
	}
}

func TestEncodeRefuses(t *testing.T) {
	if _, err := Encode(release.ChecksumSHA256, make([]byte, 31)); !errorContains(err, "sha256 digest must be 32 bytes, got 31") {
		t.Errorf("short sha256: %v", err)
	}
	if _, err := Encode("xxh3", make([]byte, 8)); !errorContains(err, "unknown algorithm") {
		t.Errorf("unknown algorithm: %v", err)
	}
}

func TestVerify(t *testing.T) {
	want := release.Checksum{Algorithm: release.ChecksumCRC64NVME, Value: "rosUhgp5mIg="}
	got := []byte{0, 0, 0, 0, 0, 0, 0, 1}
	err := Verify(want, got)
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("Verify = %v, want ErrMismatch", err)
	}
	const msg = "checksum: mismatch: crc64nvme expected rosUhgp5mIg= (ae8b14860a799888), got AAAAAAAAAAE= (0000000000000001)"
	if err.Error() != msg {
		t.Fatalf("message\n got %s\nwant %s", err, msg)
	}

	// A digest of the wrong size or a bad manifest value is an error, but
	// not a mismatch: the bytes were never compared.
	for _, tt := range []struct {
		want release.Checksum
		got  []byte
	}{
		{want, got[:4]},
		{release.Checksum{Algorithm: "crc32c", Value: "rosUhgp5mIg="}, got[:4]},
		{release.Checksum{Algorithm: "crc16", Value: "AAA="}, got[:2]},
	} {
		if err := Verify(tt.want, tt.got); err == nil || errors.Is(err, ErrMismatch) {
			t.Errorf("Verify(%+v, %x) = %v, want a non-mismatch error", tt.want, tt.got, err)
		}
	}
}

func errorContains(err error, want string) bool {
	if want == "" {
		return err == nil
	}
	return err != nil && strings.Contains(err.Error(), want)
}
