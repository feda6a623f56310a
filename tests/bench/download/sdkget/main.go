// Command sdkget is a contender of the download benchmark: it lists an S3
// prefix and downloads every object under it into a directory with
// aws-sdk-go-v2's manager.Downloader, the way a Go program would without
// Hydra. It verifies nothing of its own (no size or checksum check beyond
// what the SDK does by default).
//
//	sdkget -mode default|tuned s3://BUCKET/PREFIX/ DIR
//
// The endpoint and credentials come from the standard AWS environment
// (AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, ...).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// settings are the knobs of one mode.
type settings struct {
	partSize    int64 // manager.Downloader.PartSize (0: the SDK's 5 MiB)
	concurrency int   // manager.Downloader.Concurrency (0: the SDK's 5)
	objects     int   // objects downloaded at once
}

// modes: "default" is the SDK as it comes, one object after another, as a
// plain loop over a listing does; "tuned" is what a careful user sets.
var modes = map[string]settings{
	"default": {objects: 1},
	"tuned":   {partSize: 16 << 20, concurrency: 16, objects: 8},
}

func main() {
	mode := flag.String("mode", "default", "default or tuned")
	flag.Parse()
	if err := run(context.Background(), *mode, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "sdkget:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, mode string, args []string) error {
	set, ok := modes[mode]
	if !ok {
		return fmt.Errorf("-mode %q: want default or tuned", mode)
	}
	if len(args) != 2 || !strings.HasPrefix(args[0], "s3://") {
		return errors.New("usage: sdkget [-mode default|tuned] s3://BUCKET/PREFIX/ DIR")
	}
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(args[0], "s3://"), "/")
	client, err := newClient(ctx, set)
	if err != nil {
		return err
	}
	keys, err := list(ctx, client, bucket, prefix)
	if err != nil {
		return err
	}
	return downloadAll(ctx, newGetter(client, set), bucket, prefix, keys, args[1], set.objects)
}

// getter downloads one object into w.
type getter func(ctx context.Context, w io.WriterAt, in *s3.GetObjectInput) error

// newGetter wraps manager.Downloader, the contender this program exists
// to measure. The SDK deprecates it for feature/s3/transfermanager, but it
// is what Go programs use today, so it is the contender to beat.
func newGetter(client *s3.Client, set settings) getter {
	d := manager.NewDownloader(client, func(d *manager.Downloader) { //nolint:staticcheck // SA1019: see above
		if set.partSize > 0 {
			d.PartSize = set.partSize
		}
		if set.concurrency > 0 {
			d.Concurrency = set.concurrency
		}
	})
	return func(ctx context.Context, w io.WriterAt, in *s3.GetObjectInput) error {
		_, err := d.Download(ctx, w, in) //nolint:staticcheck // SA1019: see above
		return err
	}
}

// newClient builds the client from the AWS environment; the tuned mode
// sizes the connection pool for every request it may have in flight.
func newClient(ctx context.Context, set settings) (*s3.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = true // MinIO on loopback has no wildcard DNS
		if set.concurrency == 0 {
			return
		}
		conns := set.concurrency * set.objects
		o.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConns = conns
			tr.MaxIdleConnsPerHost = conns
		})
	}), nil
}

func list(ctx context.Context, client *s3.Client, bucket, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}

// downloadAll runs `objects` workers over the keys; the first error stops
// the others from taking new keys.
func downloadAll(ctx context.Context, get getter, bucket, prefix string, keys []string, dir string, objects int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan string)
	errs := make(chan error, objects)
	var wg sync.WaitGroup
	for range objects {
		wg.Go(func() {
			for key := range next {
				if err := download(ctx, get, bucket, key, filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(key, prefix)))); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		})
	}
feed:
	for _, k := range keys {
		select {
		case next <- k:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	close(errs)
	return <-errs // nil when no worker failed
}

func download(ctx context.Context, get getter, bucket, key, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = get(ctx, f, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err = errors.Join(err, f.Close()); err != nil {
		return fmt.Errorf("s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}
