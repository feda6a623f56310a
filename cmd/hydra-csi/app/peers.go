package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/pkg/agent"
	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/peer"
	"github.com/hydra-csi/hydra/pkg/release"
)

// peerServing is the node's side of peer distribution: the routes the
// cache fetches through, and the server other nodes read from.
type peerServing struct {
	info   *release.PeerInfo
	routes *agent.PeerRoutes
	server *peer.Server
	http   *http.Server
	ln     net.Listener
}

// newPeerServing builds the client side and listens on --peer-listen; the
// server starts serving once the cache exists (serve). nil when peers
// are off.
func newPeerServing(opts Options) (*peerServing, error) {
	if opts.PeerListen == "" {
		return nil, nil
	}
	client := peer.NewClient(peer.ClientOptions{Node: opts.NodeID, MinRate: opts.peerMinBytes})
	ln, err := net.Listen("tcp", opts.PeerListen)
	if err != nil {
		return nil, fmt.Errorf("--peer-listen %s: %w", opts.PeerListen, err)
	}
	return &peerServing{
		info:   &release.PeerInfo{Address: opts.PeerAdvertise, Zone: opts.Zone},
		routes: agent.NewPeerRoutes(opts.NodeID, client),
		ln:     ln,
	}, nil
}

// serve starts answering peers from c.
func (p *peerServing) serve(opts Options, c *cache.Cache, reg prometheus.Registerer) error {
	srv, err := peer.NewServer(peer.ServerOptions{Store: c, Secret: p.routes.Secret,
		Rate: opts.peerUploadBytes, Streams: opts.PeerUploadStreams, Registerer: reg})
	if err != nil {
		_ = p.ln.Close()
		return err
	}
	p.server = srv
	// The server's limits on headers and idle connections; no read or
	// write timeout: a capped upload of a large part takes its time, and
	// stalled ones are cut by the server's write stall and the client's
	// floor.
	p.http = srv.HTTPServer(opts.PeerListen)
	go func() {
		if err := p.http.Serve(p.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "Peer server stopped", "address", opts.PeerListen)
		}
	}()
	klog.InfoS("Serving peers", "listen", opts.PeerListen, "advertise", opts.PeerAdvertise, "zone", opts.Zone,
		"uploadRate", opts.peerUploadBytes, "uploadStreams", opts.PeerUploadStreams)
	return nil
}

// stop closes the listener and the transfers in flight: peers fall back
// to their next source.
func (p *peerServing) stop() {
	if p == nil || p.http == nil {
		if p != nil {
			_ = p.ln.Close()
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := p.http.Shutdown(ctx); err != nil {
		_ = p.http.Close()
	}
}
