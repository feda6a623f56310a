package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const (
	// region is what every client signs with; MinIO accepts any.
	region = "us-east-1"
	// startTimeout bounds the wait for a server to answer its health check.
	startTimeout = 60 * time.Second
	// stopTimeout is the grace between SIGTERM and SIGKILL.
	stopTimeout = 10 * time.Second
	// minioMemLimit: MinIO sizes its request pools from it (default: all
	// of RAM, which this shared box must not promise).
	minioMemLimit = "2GiB"
)

// server is a child process the benchmark keeps running: MinIO or the
// manager. It dies with the benchmark (Pdeathsig) even on a crash.
type server struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
}

// startServer runs bin with args and env, logging to logPath, and waits
// until url answers 200.
func startServer(name, bin string, args, env []string, logPath, url string) (*server, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	s := &server{name: name, exited: make(chan struct{}), log: logPath}
	s.cmd = exec.Command(bin, args...) //nolint:gosec // G204: our own tool binaries from the tools cache and -bin
	s.cmd.Env = env
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		_ = s.cmd.Wait() // the exit status is in the log
		_ = logFile.Close()
		close(s.exited)
	}()
	if err := s.waitLive(url); err != nil {
		s.stop()
		return nil, fmt.Errorf("%w (log: %s)", err, logPath)
	}
	return s, nil
}

func (s *server) waitLive(url string) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited during startup: %v", s.name, s.cmd.ProcessState)
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := client.Get(url) //nolint:gosec // G107: a loopback URL we built
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("%s at %s not live after %v", s.name, url, startTimeout)
}

// stop ends the server: SIGTERM, then SIGKILL after a grace period.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM) // fails only if already gone
	select {
	case <-s.exited:
		return
	case <-time.After(stopTimeout):
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// cpuSeconds is the CPU time (user+system) the server has used so far,
// from /proc/PID/stat; it explains how much of the two cores the store
// took while a contender ran.
func (s *server) cpuSeconds() (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid)) //nolint:gosec // G703: /proc of our child
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime and stime are fields 14 and 15.
	_, rest, ok := strings.Cut(string(raw), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, fmt.Errorf("unreadable /proc/%d/stat", s.cmd.Process.Pid)
	}
	var utime, stime int64
	if _, err := fmt.Sscan(f[11], &utime); err != nil {
		return 0, err
	}
	if _, err := fmt.Sscan(f[12], &stime); err != nil {
		return 0, err
	}
	const userHZ = 100 // the unit of /proc times on Linux, whatever the kernel's HZ
	return float64(utime+stime) / userHZ, nil
}

// minio is the S3 store of the benchmark.
type minio struct {
	*server
	endpoint, accessKey, secretKey string
}

// startMinIO runs MinIO on two loopback ports with its data in dataDir,
// retrying on fresh ports if one was taken between probe and bind.
func startMinIO(bin, dataDir, stateDir string) (*minio, error) {
	var errs []error
	for attempt := range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		console, err := freePort()
		if err != nil {
			return nil, err
		}
		m := &minio{
			endpoint:  "http://" + port,
			accessKey: "bench" + rand.Text()[:12],
			secretKey: rand.Text(),
		}
		env := append(cleanEnv("MINIO_"),
			"MINIO_ROOT_USER="+m.accessKey,
			"MINIO_ROOT_PASSWORD="+m.secretKey,
			"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CALLHOME_ENABLE=off",
			"MINIO_SCANNER_SPEED=slowest", // the background scanner would compete for the cores
		)
		args := []string{"server", "--address", port, "--console-address", console,
			"--certs-dir", filepath.Join(stateDir, "certs"), "--memlimit", minioMemLimit, dataDir}
		logPath := filepath.Join(stateDir, fmt.Sprintf("minio-%d.log", attempt))
		m.server, err = startServer("minio", bin, args, env, logPath, m.endpoint+"/minio/health/live")
		if err == nil {
			return m, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("minio did not start: %w", errors.Join(errs...))
}

// awsEnv is the environment through which every S3 client (hydra, sdkget)
// finds this MinIO.
func (m *minio) awsEnv() []string {
	return []string{
		"AWS_ENDPOINT_URL_S3=" + m.endpoint,
		"AWS_ACCESS_KEY_ID=" + m.accessKey,
		"AWS_SECRET_ACCESS_KEY=" + m.secretKey,
		"AWS_SESSION_TOKEN=",
		"AWS_REGION=" + region,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	}
}

// startManager runs hydra-manager without auth on a loopback port, its
// state in stateDir.
func startManager(bin, stateDir string) (*server, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	url := "http://" + port
	db := filepath.Join(stateDir, "manager.db")
	if err := os.Remove(db); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, "", err // an earlier run's channels would collide
	}
	args := []string{"--insecure-no-auth", "--listen", port, "--store", "bolt://" + db}
	s, err := startServer("hydra-manager", bin, args, cleanEnv("HYDRA_"), filepath.Join(stateDir, "manager.log"), url+"/healthz")
	return s, url, err
}

// freePort returns a loopback address that was free a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// cleanEnv is the process environment without variables that start with
// any of the prefixes, nor AWS_*: a developer's profile must not leak in.
func cleanEnv(prefixes ...string) []string {
	prefixes = append(prefixes, "AWS_")
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}
