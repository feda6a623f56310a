//go:build linux

// Linux only for Pdeathsig: a MinIO whose test binary died (a timeout panic
// skips t.Cleanup) must not outlive it. Hydra's tests run on Linux.

package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

const (
	// minioRegion is what clients sign with; MinIO accepts any region
	// unless one is configured, and us-east-1 is what SDKs default to.
	minioRegion = "us-east-1"
	// minioStartTimeout bounds the wait for /minio/health/live.
	minioStartTimeout = 60 * time.Second
	// minioStopTimeout is the grace between SIGTERM and SIGKILL.
	minioStopTimeout = 10 * time.Second
	// minioMemLimit keeps one server modest on a small shared box; MinIO
	// sizes its request pool from it (default: all of RAM).
	minioMemLimit = "1GiB"
	// minioStartAttempts covers the race between FreePort and MinIO's bind.
	minioStartAttempts = 3
	// minioLogTail is how much of the server log a failed test prints.
	minioLogTail = 32 << 10
)

// MinIO is a real MinIO server on 127.0.0.1 with its data in a temporary
// directory, stopped when the test ends.
type MinIO struct {
	// Endpoint is the S3 API URL, "http://127.0.0.1:PORT".
	Endpoint string
	// AccessKey and SecretKey are the root credentials, fresh per server.
	AccessKey string
	SecretKey string

	// bin and args are the command line, kept for Start after Kill.
	bin     string
	args    []string
	mu      sync.Mutex
	cmd     *exec.Cmd     // nil once stopped
	exited  chan struct{} // closed once the process is reaped
	logPath string

	clientOnce sync.Once
	client     *s3.Client
}

// StartMinIO starts MinIO from the binary `make tools` built, waits until it
// serves, and stops it in t.Cleanup. Its log is printed if the test fails.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	return StartMinIOOn(t, "127.0.0.1")
}

// StartMinIOOn is StartMinIO on another local address: the end-to-end test
// binds one that the cluster's pods reach (testenv.ClusterAddr).
func StartMinIOOn(t testing.TB, host string) *MinIO {
	t.Helper()
	bin := Tool(t, "minio")
	var errs []error
	for attempt := range minioStartAttempts {
		// TempDir registers its removal now, so it runs after the Stop
		// below. A fresh data directory per attempt: MinIO keeps state
		// sealed with the root credentials, which change too.
		dataDir, stateDir := t.TempDir(), t.TempDir()
		logPath := filepath.Join(stateDir, "minio.log")
		m, err := startMinIO(t, bin, host, dataDir, stateDir, logPath)
		if err == nil {
			t.Cleanup(func() {
				m.Stop()
				if t.Failed() {
					t.Logf("testenv: MinIO log (%s), last %d bytes:\n%s", logPath, minioLogTail, ReadTail(logPath, minioLogTail))
				}
			})
			return m
		}
		errs = append(errs, err)
		t.Logf("testenv: MinIO attempt %d: %v\n%s", attempt+1, err, ReadTail(logPath, minioLogTail))
	}
	t.Fatalf("testenv: MinIO did not start: %v", errors.Join(errs...))
	return nil
}

// startMinIO runs one server on fresh ports and waits for it to be live; on
// failure the process is gone again.
func startMinIO(t testing.TB, bin, host, dataDir, stateDir, logPath string) (*MinIO, error) {
	port, consolePort := FreePort(t), FreePort(t)
	m := &MinIO{
		Endpoint:  "http://" + net.JoinHostPort(host, strconv.Itoa(port)),
		AccessKey: "hydra" + rand.Text()[:12], // MinIO allows 3–20 characters
		SecretKey: rand.Text(),
		logPath:   logPath,
	}
	m.bin = bin
	m.args = []string{"server",
		"--address", net.JoinHostPort(host, strconv.Itoa(port)),
		"--console-address", net.JoinHostPort(host, strconv.Itoa(consolePort)),
		"--certs-dir", filepath.Join(stateDir, "certs"), // not ~/.minio
		"--memlimit", minioMemLimit,
		dataDir}
	if err := m.launch(); err != nil {
		return nil, err
	}
	if err := m.waitLive(); err != nil {
		m.Stop()
		return nil, err
	}
	return m, nil
}

// launch starts the process with the saved command line, its output
// appended to the log.
func (m *MinIO) launch() error {
	logFile, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(m.bin, m.args...)
	cmd.Env = m.serverEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", m.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the exit status is in the log; Stop only needs the reaping
		logFile.Close()
		close(exited)
	}()
	m.mu.Lock()
	m.cmd, m.exited = cmd, exited
	m.mu.Unlock()
	return nil
}

// serverEnv is the parent's environment without MINIO_* settings, plus
// ours. Everything that would reach the internet is off.
func (m *MinIO) serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MINIO_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"MINIO_ROOT_USER="+m.AccessKey,
		"MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off",           // no console, no console port in use
		"MINIO_UPDATE=off",            // no update checks
		"MINIO_CALLHOME_ENABLE=off",   // no diagnostics upload
		"MINIO_SCANNER_SPEED=slowest", // background scanner: spare the CPUs
	)
}

// waitLive polls the liveness endpoint until it answers 200, the process
// exits, or minioStartTimeout passes.
func (m *MinIO) waitLive() error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(minioStartTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-m.exited:
			return fmt.Errorf("minio exited during startup: %v", m.cmd.ProcessState)
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := client.Get(m.Endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("minio at %s not live after %v", m.Endpoint, minioStartTimeout)
}

// Stop ends the server: SIGTERM, then SIGKILL after a grace period, and
// reaps it. Calling it again does nothing.
func (m *MinIO) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM) // fails only if already gone
	select {
	case <-m.exited:
	case <-time.After(minioStopTimeout):
		_ = m.cmd.Process.Kill()
		<-m.exited
	}
	m.cmd = nil
}

// Kill ends the server with SIGKILL, as a crash would, and reaps it.
func (m *MinIO) Kill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.exited
	m.cmd = nil
}

// Start starts a stopped or killed server again on the same address and
// data, and waits until it serves.
func (m *MinIO) Start(t testing.TB) {
	t.Helper()
	if err := m.launch(); err != nil {
		t.Fatal(err)
	}
	if err := m.waitLive(); err != nil {
		t.Fatalf("testenv: MinIO restart: %v", err)
	}
}

// S3Client returns a client for this server: path-style addressing, the
// root credentials, and the SDK's other defaults.
func (m *MinIO) S3Client(t testing.TB) *s3.Client {
	t.Helper()
	return m.s3Client()
}

func (m *MinIO) s3Client() *s3.Client {
	m.clientOnce.Do(func() {
		m.client = s3.New(s3.Options{
			Region:       minioRegion,
			BaseEndpoint: aws.String(m.Endpoint),
			UsePathStyle: true,
			Credentials:  credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
		})
	})
	return m.client
}

// CreateBucket creates a bucket or fails the test.
func (m *MinIO) CreateBucket(t testing.TB, name string) {
	t.Helper()
	_, err := m.S3Client(t).CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(name)})
	if err != nil {
		t.Fatalf("testenv: create bucket %q: %v", name, err)
	}
}

// Put stores body at bucket/key or fails the test. It sends no checksum,
// as older clients do (the SDK would otherwise add a CRC32); tests that
// want one call S3Client().PutObject with a ChecksumAlgorithm.
func (m *MinIO) Put(t testing.TB, bucket, key string, body []byte) {
	t.Helper()
	if err := m.TryPut(bucket, key, body); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// PutChecksummed uploads body with a CRC64NVME checksum that MinIO
// stores, so that a publish records it in the manifest (what peer
// distribution needs to take a file from a peer).
func (m *MinIO) PutChecksummed(t testing.TB, bucket, key string, body []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := m.s3Client().PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc64nvme,
	})
	if err != nil {
		t.Fatalf("testenv: put s3://%s/%s with a checksum: %v", bucket, key, err)
	}
}

// TryPut is Put that returns the error, for tests that put while the
// server may be down.
func (m *MinIO) TryPut(bucket, key string, body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := m.s3Client().PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket),
		Key:    aws.String(key),
		Body:   bytes.NewReader(body),
	}, func(o *s3.Options) { o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired })
	if err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}

// Env returns the AWS_* variables a subprocess (the hydra CLI) needs to
// reach this server through the standard AWS configuration chain.
func (m *MinIO) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL_S3=" + m.Endpoint,
		"AWS_ACCESS_KEY_ID=" + m.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + m.SecretKey,
		"AWS_SESSION_TOKEN=", // a developer's session token would spoil the signature
		"AWS_REGION=" + minioRegion,
		"AWS_EC2_METADATA_DISABLED=true", // never probe 169.254.169.254
	}
}

// ReadTail returns the last n bytes of a file (a process's log, for a
// failure message), or why it could not.
func ReadTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
