package images

import (
	"fmt"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Where Hydra's images are published and its source lives.
const (
	Registry = "ghcr.io/hydra-csi"
	Source   = "https://github.com/hydra-csi/hydra"
)

// The support images of the registry-less end-to-end test, and the
// csi-provisioner version hack/tools.sh builds.
const (
	PauseRef       = "localhost/pause:e2e"
	BusyboxRef     = "localhost/busybox:e2e"
	ProvisionerRef = "registry.k8s.io/sig-storage/csi-provisioner:v6.3.0"
)

// CertsEnv points Go and OpenSSL at the CA bundle every image carries.
const CertsEnv = "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"

// NodeApplets are the busybox applets of the node image: k8s.io/mount-utils
// execs mount and umount from PATH; sh is for a person debugging the node.
var NodeApplets = []string{"mount", "umount", "sh"}

// Inputs are the host files Hydra's three images are made of. The
// binaries must be static linux/amd64 executables (CrossBuild's output).
type Inputs struct {
	Tag     string // the images' tag
	Version string // the version stamped into the binaries, for the label
	Manager string // hydra-manager
	CLI     string // hydra, shipped beside the manager for kubectl exec
	CSI     string // hydra-csi
	CACerts string // the CA bundle, DefaultCACerts
	Busybox string // a static busybox, DefaultBusybox
}

// Hydra returns the specs of hydra-manager, hydra-csi (the controller) and
// hydra-csi-node. The first two run as nonroot on a distroless-like base;
// the node plugin runs as root because it mounts, with busybox's mount and
// umount on PATH for k8s.io/mount-utils.
func Hydra(in Inputs) ([]Spec, error) {
	manager, err := distroless(in.CACerts, map[string]string{
		"/usr/local/bin/hydra-manager": in.Manager,
		"/usr/local/bin/hydra":         in.CLI,
	})
	if err != nil {
		return nil, err
	}
	csi, err := distroless(in.CACerts, map[string]string{"/usr/local/bin/hydra-csi": in.CSI})
	if err != nil {
		return nil, err
	}
	node, err := distroless(in.CACerts, map[string]string{"/usr/local/bin/hydra-csi": in.CSI})
	if err != nil {
		return nil, err
	}
	if err := AddBusybox(node, in.Busybox, NodeApplets...); err != nil {
		return nil, err
	}
	return []Spec{
		hydraSpec(in, "hydra-manager", manager, nonrootConfig("/usr/local/bin/hydra-manager")),
		hydraSpec(in, "hydra-csi", csi, nonrootConfig("/usr/local/bin/hydra-csi")),
		hydraSpec(in, "hydra-csi-node", node, v1.Config{
			User:       "0:0",
			WorkingDir: "/",
			Entrypoint: []string{"/usr/local/bin/hydra-csi"},
			Env:        []string{BasePath, CertsEnv},
		}),
	}, nil
}

// distroless returns Base plus each host binary at its image path.
func distroless(caCerts string, bins map[string]string) (*Layer, error) {
	l, err := Base(caCerts)
	if err != nil {
		return nil, err
	}
	for dst, src := range bins {
		if err := l.HostFile(dst, 0o755, Root, src); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// nonrootConfig runs entrypoint as distroless's nonroot user in its home.
func nonrootConfig(entrypoint string) v1.Config {
	return v1.Config{
		User:       "65532:65532",
		WorkingDir: "/home/nonroot",
		Entrypoint: []string{entrypoint},
		Env:        []string{BasePath, CertsEnv},
	}
}

func hydraSpec(in Inputs, title string, l *Layer, cfg v1.Config) Spec {
	cfg.Labels = map[string]string{
		"org.opencontainers.image.title":   title,
		"org.opencontainers.image.version": in.Version,
		"org.opencontainers.image.source":  Source,
	}
	return Spec{File: title + ".tar", Ref: Registry + "/" + title + ":" + in.Tag, Layer: l, Config: cfg}
}

// SupportInputs are the host files of the end-to-end test's images.
type SupportInputs struct {
	Pause       string // a static pause binary (hack/images/pause)
	Busybox     string // a static busybox, DefaultBusybox
	Provisioner string // csi-provisioner built by hack/tools.sh
	CACerts     string // the CA bundle, DefaultCACerts
}

// Support returns the specs of the images a registry-less cluster needs
// besides Hydra's: the sandbox's pause, a busybox for test pods, and
// csi-provisioner under the tag its manifests name.
func Support(in SupportInputs) ([]Spec, error) {
	pause := NewLayer()
	if err := pause.HostFile("/pause", 0o755, Root, in.Pause); err != nil {
		return nil, err
	}
	box, err := busyboxLayer(in.Busybox)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(in.Provisioner); err != nil {
		return nil, fmt.Errorf("images: %s is missing; build it with: hack/tools.sh csi-provisioner", in.Provisioner)
	}
	prov, err := distroless(in.CACerts, map[string]string{"/csi-provisioner": in.Provisioner})
	if err != nil {
		return nil, err
	}
	provCfg := nonrootConfig("/csi-provisioner")
	provCfg.WorkingDir = "/"
	return []Spec{
		// 65535 is the user of Kubernetes' own pause image.
		{File: "pause.tar", Ref: PauseRef, Layer: pause, Config: v1.Config{
			User: "65535:65535", Entrypoint: []string{"/pause"}, Env: []string{BasePath},
		}},
		{File: "busybox.tar", Ref: BusyboxRef, Layer: box, Config: v1.Config{
			User: "0:0", WorkingDir: "/", Cmd: []string{"sh"}, Env: []string{BasePath},
		}},
		{File: "csi-provisioner.tar", Ref: ProvisionerRef, Layer: prov, Config: provCfg},
	}, nil
}

// busyboxLayer is /bin/busybox with a symlink per applet, /tmp and the
// users and groups.
func busyboxLayer(busybox string) (*Layer, error) {
	if err := CheckBusybox(busybox); err != nil {
		return nil, err
	}
	applets, err := Applets(busybox)
	if err != nil {
		return nil, err
	}
	l := NewLayer()
	if err := AddBusybox(l, busybox, applets...); err != nil {
		return nil, err
	}
	l.File("/etc/passwd", 0o644, Root, []byte(passwd))
	l.File("/etc/group", 0o644, Root, []byte(group))
	l.Dir("/tmp", 0o1777, Root)
	l.Dir("/root", 0o700, Root)
	return l, nil
}
