package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// bucket holds every shape, each under the prefix "<shape id>/".
const bucket = "bench"

// seedWorkers is how many objects are uploaded at once.
const seedWorkers = 8

// objectKey names object i of a shape. The index is in the name, so a
// check can find the pattern of any downloaded file by its base name.
func objectKey(s shape, i int) string { return fmt.Sprintf("%s/f%05d.bin", s.ID(), i) }

// fileName is the base name of object i once downloaded.
func fileName(i int) string { return fmt.Sprintf("f%05d.bin", i) }

// pattern is the content of one object: a seekable stream of pseudo-random
// bytes in which block b is a ChaCha8 stream seeded by (seed, b), so any
// offset can be produced again without holding the object in memory.
// Random bytes leave nothing for a store or a transport to compress.
type pattern struct {
	seed      uint64
	size, off int64
	block     []byte
	blockIdx  int64
}

const patternBlock = 64 << 10

func newPattern(s shape, i int) *pattern {
	// Distinct per shape and object: 2^20 objects per shape at most.
	return &pattern{seed: uint64(s.size)<<20 | uint64(i), size: s.size, blockIdx: -1} //nolint:gosec // G115: sizes and indexes are positive
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.size {
		return 0, io.EOF
	}
	idx := p.off / patternBlock
	if idx != p.blockIdx {
		var seed [32]byte
		binary.LittleEndian.PutUint64(seed[:8], p.seed)
		binary.LittleEndian.PutUint64(seed[8:16], uint64(idx)) //nolint:gosec // G115: offsets are positive
		if p.block == nil {
			p.block = make([]byte, patternBlock)
		}
		_, _ = rand.NewChaCha8(seed).Read(p.block) // never fails
		p.blockIdx = idx
	}
	in := p.off % patternBlock
	n := copy(b, p.block[in:min(int64(patternBlock), in+p.size-p.off)])
	p.off += int64(n)
	return n, nil
}

func (p *pattern) Seek(offset int64, whence int) (int64, error) {
	switch whence {
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

// s3Client is the benchmark's own client, for seeding only.
func (m *minio) s3Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       region,
		BaseEndpoint: aws.String(m.endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(m.accessKey, m.secretKey, ""),
	})
}

// seed creates the bucket and uploads every shape's objects, each with a
// CRC64NVME checksum that MinIO stores: publish records it and hydra pull
// verifies every file against it.
func seed(ctx context.Context, m *minio, shapes []shape) error {
	client := m.s3Client()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	type job struct {
		s shape
		i int
	}
	jobs := make(chan job)
	errs := make(chan error, seedWorkers)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range seedWorkers {
		wg.Go(func() {
			for j := range jobs {
				if err := put(ctx, client, j.s, j.i); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		})
	}
feed:
	for _, s := range shapes {
		for i := range s.count {
			select {
			case jobs <- job{s, i}:
			case <-ctx.Done():
				break feed
			}
		}
	}
	close(jobs)
	wg.Wait()
	close(errs)
	return <-errs
}

func put(ctx context.Context, client *s3.Client, s shape, i int) error {
	_, err := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:            aws.String(bucket),
		Key:               aws.String(objectKey(s, i)),
		Body:              newPattern(s, i),
		ContentLength:     aws.Int64(s.size),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc64nvme,
	})
	if err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", bucket, objectKey(s, i), err)
	}
	return nil
}
