package checksum

import (
	"fmt"
	"hash/crc32"
	"math/bits"

	"github.com/minio/crc64nvme"

	"github.com/hydra-csi/hydra/pkg/release"
)

// Combining CRCs without re-reading the data.
//
// Both CRCs here are reflected, with initial value and final xor ~0. For such
// a CRC, crc(A‖B) = crc(A)·x^(8·len(B)) mod P ⊕ crc(B): carrying the register
// through B's bytes multiplies it by x^8 per byte, and the ~0 terms added at
// the start of B and at both ends cancel. Combining is thus one
// multiplication by x^(8n) modulo the CRC polynomial P over GF(2).
//
// x^(8n) is the product of x^(8·2^k) over the set bits k of n. Those powers
// are computed once per algorithm by repeated squaring (the technique of
// zlib's crc32_combine, generalized to any width and polynomial), each with
// a table of its multiples by every 4-bit polynomial. Multiplying by one
// power is then a table-driven carry-less multiply of width/4 steps, and a
// combine costs popcount(n) of them: tens of nanoseconds, no allocation.
//
// Polynomials are held the way a reflected CRC register holds them: bit i is
// the coefficient of x^(width-1-i), so x^0 is the top bit and multiplying by
// x is a right shift, folding P back in when the x^(width-1) bit falls off.

// field is the arithmetic modulo one CRC polynomial.
type field struct {
	width int
	mask  uint64 // the register's bits
	poly  uint64 // P without its x^width term, reflected
	// reduce4[v] is v·x^4 mod P for v in the low nibble (x^(width-4) and up).
	reduce4 [16]uint64
	// pow[k][v] is N(v)·x^(8·2^k) mod P, where the nibble v read with its
	// bit 3 as x^0 and bit 0 as x^3 is the polynomial N(v). lenB < 2^63, so
	// k < 63.
	pow [63][16]uint64
}

var (
	crc64Field = newField(64, crc64nvme.NVME)
	crc32Field = newField(32, crc32.Castagnoli)
)

// fieldOf returns the field of a combinable algorithm, nil for others.
func fieldOf(algorithm string) *field {
	switch algorithm {
	case release.ChecksumCRC64NVME:
		return crc64Field
	case release.ChecksumCRC32C:
		return crc32Field
	}
	return nil
}

// Combine returns the CRC of A‖B from crcA = crc(A), crcB = crc(B) and
// lenB = len(B), for a combinable algorithm (crc64nvme or crc32c; crc32c
// values are widened to 64 bits as Sum64 returns them). It does not allocate.
func Combine(algorithm string, crcA, crcB uint64, lenB int64) (uint64, error) {
	f := fieldOf(algorithm)
	switch {
	case f == nil && size(algorithm) == 0:
		return 0, unknown(algorithm)
	case f == nil:
		return 0, fmt.Errorf("checksum: %s digests do not combine", algorithm)
	case lenB < 0:
		return 0, fmt.Errorf("checksum: combine %s: negative length %d", algorithm, lenB)
	case (crcA|crcB)&^f.mask != 0:
		return 0, fmt.Errorf("checksum: combine %s: value %#x or %#x exceeds %d bits", algorithm, crcA, crcB, f.width)
	}
	return f.shift(crcA, uint64(lenB)) ^ crcB, nil
}

func newField(width int, poly uint64) *field {
	f := &field{width: width, mask: ^uint64(0) >> (64 - width), poly: poly}
	for v := range f.reduce4 {
		r := uint64(v)
		for range 4 {
			r = f.mulx(r)
		}
		f.reduce4[v] = r
	}
	p := uint64(1) << (width - 1) // x^0
	for range 8 {
		p = f.mulx(p)
	}
	// p = x^8 = x^(8·2^0); each square doubles the exponent.
	for k := range f.pow {
		f.pow[k] = f.multiples(p)
		p = f.mul(&f.pow[k], p)
	}
	return f
}

// mulx returns a·x mod P.
func (f *field) mulx(a uint64) uint64 {
	if a&1 != 0 {
		return a>>1 ^ f.poly
	}
	return a >> 1
}

// multiples returns the table t[v] = N(v)·b mod P (N as for pow).
func (f *field) multiples(b uint64) [16]uint64 {
	var t [16]uint64
	for m := 8; m >= 1; m >>= 1 { // bit 3 is x^0·b, bit 2 x^1·b, …
		t[m] = b
		b = f.mulx(b)
	}
	for v := 3; v < 16; v++ {
		if low := v & -v; low != v {
			t[v] = t[low] ^ t[v^low] // both smaller than v, so already set
		}
	}
	return t
}

// mul returns a·b mod P, given b's multiples t. It is Horner's rule over a's
// nibbles from the highest degree (the register's low bits) down: shift the
// partial product by x^4, add the nibble's multiple of b.
func (f *field) mul(t *[16]uint64, a uint64) uint64 {
	var r uint64
	for s := 0; s < f.width; s += 4 {
		r = r>>4 ^ f.reduce4[r&0xf] ^ t[a>>s&0xf]
	}
	return r
}

// shift returns crc·x^(8n) mod P: the register carried through n zero bytes.
func (f *field) shift(crc, n uint64) uint64 {
	for ; n != 0; n &= n - 1 {
		crc = f.mul(&f.pow[bits.TrailingZeros64(n)], crc)
	}
	return crc
}
