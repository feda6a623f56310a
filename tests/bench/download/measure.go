package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// sample is one measured run of one contender on one shape.
type sample struct {
	Shape     string  `json:"shape"`
	Contender string  `json:"contender"`
	Round     int     `json:"round"` // counted rounds from 1; warm-ups are not kept
	Bytes     int64   `json:"bytes"`
	WallSec   float64 `json:"wallSeconds"`
	UserSec   float64 `json:"userSeconds"`
	SysSec    float64 `json:"sysSeconds"`
	MaxRSSKiB int64   `json:"maxRSSKiB"`
	// ServerSec is the CPU time MinIO spent during the run.
	ServerSec float64 `json:"serverCPUSeconds"`
}

// MBps is wall throughput in MB/s (10^6 bytes).
func (s sample) MBps() float64 { return float64(s.Bytes) / s.WallSec / 1e6 }

// CPUPerGB is the client's CPU seconds (user+system) per GB (10^9 bytes).
func (s sample) CPUPerGB() float64 { return (s.UserSec + s.SysSec) / (float64(s.Bytes) / 1e9) }

// ServerCPUPerGB is MinIO's CPU seconds per GB served.
func (s sample) ServerCPUPerGB() float64 { return s.ServerSec / (float64(s.Bytes) / 1e9) }

// RSSMiB is the client's peak resident set in MiB.
func (s sample) RSSMiB() float64 { return float64(s.MaxRSSKiB) / 1024 }

// measure runs cmd to completion and reads its wall time and, from the
// rusage wait4 returns for it, its CPU time and peak RSS. The child's
// output goes to logPath; a failure quotes its tail.
func measure(ctx context.Context, cmd *exec.Cmd, logPath string, srv *server) (sample, error) {
	logFile, err := os.Create(logPath) //nolint:gosec // G703: a name we built under the results directory
	if err != nil {
		return sample{}, err
	}
	defer func() { _ = logFile.Close() }() // the child wrote it; nothing of ours to lose
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	srvBefore, err := srv.cpuSeconds()
	if err != nil {
		return sample{}, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return sample{}, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill() // fails only if it just exited; Wait reaps it either way
		return sample{}, fmt.Errorf("%w (%s: %w)", ctx.Err(), cmd.Args[0], <-done)
	}
	wall := time.Since(start)
	srvAfter, serr := srv.cpuSeconds()
	if err != nil {
		return sample{}, fmt.Errorf("%s failed: %w\n%s", cmd.Args[0], err, tail(logPath, 2048))
	}
	if serr != nil {
		return sample{}, serr
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return sample{}, errors.New("no rusage for the child")
	}
	return sample{
		WallSec:   wall.Seconds(),
		UserSec:   time.Duration(ru.Utime.Nano()).Seconds(),
		SysSec:    time.Duration(ru.Stime.Nano()).Seconds(),
		MaxRSSKiB: ru.Maxrss, // Linux: KiB
		ServerSec: srvAfter - srvBefore,
	}, nil
}

// checkDownload makes sure a contender really fetched the shape: the right
// number of files, each of the right size, and the head and tail of one of
// them (chosen by round) byte for byte. A contender that wrote sparse or
// truncated files would otherwise post impossible numbers.
func checkDownload(dir string, s shape, round int) error {
	files := map[string]string{} // base name → path
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error { //nolint:gosec // G703: dir is ours
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() != s.size {
			return fmt.Errorf("%s: %d bytes, want %d", path, info.Size(), s.size)
		}
		files[d.Name()] = path
		total += info.Size()
		return nil
	})
	if err != nil {
		return err
	}
	if len(files) != s.count || total != s.Bytes() {
		return fmt.Errorf("%s: %d files, %d bytes; want %d files, %d bytes", dir, len(files), total, s.count, s.Bytes())
	}
	i := round % s.count
	path, ok := files[fileName(i)]
	if !ok {
		return fmt.Errorf("%s: no file %s", dir, fileName(i))
	}
	return checkContent(path, newPattern(s, i))
}

// checkContent compares the first and last MiB of a file with its pattern.
func checkContent(path string, p *pattern) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // only read
	const span = 1 << 20
	for _, off := range []int64{0, max(0, p.size-span)} {
		n := min(span, p.size-off)
		got, want := make([]byte, n), make([]byte, n)
		if _, err := f.ReadAt(got, off); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if _, err := p.Seek(off, io.SeekStart); err != nil {
			return err
		}
		if _, err := io.ReadFull(p, want); err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("%s: bytes %d-%d differ from what was uploaded", path, off, off+n-1)
		}
	}
	return nil
}

// tail returns the last n bytes of a file.
func tail(path string, n int64) string {
	b, err := os.ReadFile(path) //nolint:gosec // G703: a log file we named
	if err != nil {
		return err.Error()
	}
	return string(b[max(0, int64(len(b))-n):])
}
