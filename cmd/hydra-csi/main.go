// Command hydra-csi is Hydra's CSI plugin: --mode=controller serves the
// identity and controller services, --mode=node the identity and node
// services plus the node agent, --mode=all both (development, csi-sanity).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/cmd/hydra-csi/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := app.Run(ctx, os.Args[1:], os.Stderr, nil)
	stop()
	klog.Flush()
	if err != nil {
		fmt.Fprintf(os.Stderr, "hydra-csi: %v\n", err)
		os.Exit(1)
	}
}
