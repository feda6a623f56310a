package source_test

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// discard is io.Discard without ReadFrom, so both contenders copy through
// their own buffers as they would into the cache's files.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkS3ReadRange downloads one object in 8 MiB parts, 4 at a time,
// with the Reader and, for comparison, with a default SDK client and
// io.CopyBuffer. Loopback MinIO is CPU-bound (docs/development.md, "The test peers"), so compare
// the two by ratio within one run, and by client CPU per GB (cpu-s/GB:
// this process's CPU time; MinIO runs in another).
func BenchmarkS3ReadRange(b *testing.B) {
	const (
		size     = 256 << 20
		part     = 8 << 20
		parallel = 4
	)
	m := testenv.StartMinIO(b)
	m.CreateBucket(b, "bench")
	m.Put(b, "bench", "ds/blob", benchBody(size))
	src := release.Source{Scheme: release.SchemeS3, Bucket: "bench", Prefix: "ds/"}
	f := release.File{Path: "blob", Size: size}
	none := b.TempDir() + "/none" // shield from the developer's AWS files
	b.Setenv("AWS_CONFIG_FILE", none)
	b.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		b.Setenv(k, v)
	}
	r, err := source.NewReader(b.Context(), release.SchemeS3, source.FetchOptions{Requests: parallel})
	if err != nil {
		b.Fatal(err)
	}
	client := m.S3Client(b)
	contenders := map[string]func(off, n int64) error{
		"reader": func(off, n int64) error { return r.ReadRange(b.Context(), src, f, off, n, discard{}) },
		"sdk-default": func(off, n int64) error {
			out, err := client.GetObject(b.Context(), &s3.GetObjectInput{Bucket: aws.String("bench"), Key: aws.String("ds/blob"),
				Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))})
			if err != nil {
				return err
			}
			defer out.Body.Close()
			_, err = io.CopyBuffer(discard{}, out.Body, make([]byte, 256<<10))
			return err
		},
	}
	for _, name := range []string{"reader", "sdk-default"} {
		get := contenders[name]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			cpu0 := cpuTime(b)
			for b.Loop() {
				parts := make(chan int64, size/part)
				for off := int64(0); off < size; off += part {
					parts <- off
				}
				close(parts)
				var wg sync.WaitGroup
				for range parallel {
					wg.Go(func() {
						for off := range parts {
							if err := get(off, part); err != nil {
								b.Error(err)
							}
						}
					})
				}
				wg.Wait()
			}
			gb := float64(size) * float64(b.N) / 1e9
			b.ReportMetric((cpuTime(b)-cpu0).Seconds()/gb, "cpu-s/GB")
		})
	}
}

// cpuTime is the user+system CPU time of this process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchBody(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i ^ i>>9)
	}
	return b
}
