// Command pause is the sandbox process of the end-to-end test's pods: the
// registry-less cluster has no registry.k8s.io/pause, so `make images
// -support` ships this one as localhost/pause:e2e. As PID 1 of a pod that
// shares its PID namespace it reaps the orphans reparented to it; it exits
// 0 when kubelet stops the sandbox with SIGTERM (or on SIGINT).
package main

import (
	"errors"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGCHLD, syscall.SIGTERM, syscall.SIGINT)
	// Printed once the handlers are in place: a signal sent after this
	// line is handled, not fatal.
	_, _ = os.Stderr.WriteString("pause: waiting for SIGTERM\n")
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every child that has exited, without blocking: one
// SIGCHLD may stand for several children, signals do not queue.
func reap() int {
	n := 0
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return n
		}
		n++
	}
}
