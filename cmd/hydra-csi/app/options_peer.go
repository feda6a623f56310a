package app

import (
	"errors"
	"fmt"
	"net"

	"github.com/spf13/pflag"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/release"
)

// peerOptions are the flags of peer distribution (docs/node.md, "Fetching
// from peers"): serving releases to other nodes and fetching from them.
type peerOptions struct {
	// PeerListen serves peers on this address and turns fetching from
	// peers on; empty turns both off.
	PeerListen string
	// PeerAdvertise is the host:port other nodes dial; default the host
	// and port of PeerListen when it names a host.
	PeerAdvertise string
	// PeerUploadRate caps the bytes per second served to all peers
	// together; PeerUploadStreams the requests served at once.
	PeerUploadRate    string
	PeerUploadStreams int
	// PeerMinRate is the floor under which a peer's transfer is dropped
	// for another source.
	PeerMinRate string
	// Zone is reported to the manager for nodes without a Kubernetes
	// Node zone label.
	Zone string
	// PartSize is the size of the ranges downloads fetch; empty picks
	// cache.DefaultPartSize, or PeerPartSize with peers.
	PartSize string

	peerUploadBytes int64
	peerMinBytes    int64
	partBytes       int64
}

// PeerPartSize is the part size of nodes that fetch from peers: a part is
// passed on once it is whole, so smaller parts pipeline better (in the
// fleet benchmark the last of 8 nodes was ready 1.8× later than one node
// alone with 16 MiB parts, 1.35× with 2 MiB). Every node of a fleet must
// use the same size: peers number parts alike.
const PeerPartSize = 2 << 20

func defaultPeerOptions() peerOptions {
	return peerOptions{PeerUploadRate: "64Mi", PeerUploadStreams: 8, PeerMinRate: "1Mi"}
}

func (o *peerOptions) addPeerFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.PeerListen, "peer-listen", o.PeerListen, "serve the releases this node holds to other nodes on this address, e.g. :7470, and fetch from them; peer distribution is off when empty")
	fs.StringVar(&o.PeerAdvertise, "peer-advertise", o.PeerAdvertise, "host:port other nodes dial to reach --peer-listen (default: --peer-listen when it names a host)")
	fs.StringVar(&o.PeerUploadRate, "peer-upload-rate", o.PeerUploadRate, "bytes per second this node serves to all peers together, e.g. 64Mi or 100M")
	fs.IntVar(&o.PeerUploadStreams, "peer-upload-streams", o.PeerUploadStreams, "requests of peers served at once; more wait (429)")
	fs.StringVar(&o.PeerMinRate, "peer-min-rate", o.PeerMinRate, "bytes per second under which a transfer from a peer is dropped and the part taken from elsewhere")
	fs.StringVar(&o.Zone, "zone", o.Zone, "this node's zone, reported to the manager; the Kubernetes Node's topology.kubernetes.io/zone label wins when the manager sees one")
	fs.StringVar(&o.PartSize, "part-size", o.PartSize, "size of the ranges downloads fetch, 1Mi to 64Mi (default 16Mi, or 2Mi with --peer-listen; keep it alike on every node of a fleet)")
}

// validatePartSize reads --part-size, or picks its default.
func (o *peerOptions) validatePartSize() error {
	switch {
	case o.PartSize != "":
		n, err := parseSize(o.PartSize)
		if err != nil || n < cache.MinPartSize || n > cache.MaxPartSize {
			return fmt.Errorf("--part-size %q: want a size from 1Mi to 64Mi", o.PartSize)
		}
		o.partBytes = n
	case o.PeerListen != "":
		o.partBytes = PeerPartSize
	default:
		o.partBytes = cache.DefaultPartSize
	}
	return nil
}

func (o *peerOptions) validatePeer() error {
	if err := release.ValidateText("--zone", o.Zone, release.MaxZoneLength); err != nil {
		return err
	}
	if err := o.validatePartSize(); err != nil {
		return err
	}
	if o.PeerListen == "" {
		if o.PeerAdvertise != "" {
			return errors.New("--peer-advertise needs --peer-listen")
		}
		return nil
	}
	host, _, err := net.SplitHostPort(o.PeerListen)
	if err != nil {
		return fmt.Errorf("--peer-listen %q: want host:port or :port: %w", o.PeerListen, err)
	}
	if o.PeerAdvertise == "" {
		if host == "" || net.ParseIP(host).IsUnspecified() {
			return fmt.Errorf("--peer-advertise: required when --peer-listen %q names no host other nodes can dial", o.PeerListen)
		}
		o.PeerAdvertise = o.PeerListen
	}
	if err := release.ValidatePeerAddress("--peer-advertise", o.PeerAdvertise); err != nil {
		return err
	}
	if o.PeerUploadStreams < 1 {
		return fmt.Errorf("--peer-upload-streams %d: must be at least 1", o.PeerUploadStreams)
	}
	if o.peerUploadBytes, err = parseSize(o.PeerUploadRate); err != nil {
		return fmt.Errorf("--peer-upload-rate %q: %w", o.PeerUploadRate, err)
	}
	if o.peerMinBytes, err = parseSize(o.PeerMinRate); err != nil {
		return fmt.Errorf("--peer-min-rate %q: %w", o.PeerMinRate, err)
	}
	return nil
}
