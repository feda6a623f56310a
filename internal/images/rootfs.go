package images

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// Default host paths of what the images copy from the machine.
const (
	DefaultCACerts = "/etc/ssl/certs/ca-certificates.crt"
	DefaultBusybox = "/bin/busybox"
	// BusyboxInstall is what provides DefaultBusybox on Debian.
	BusyboxInstall = "apt-get install -y busybox-static"
)

// The users and groups of distroless's static image: root, nobody and
// nonroot (65532), each with a login shell that does not exist.
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group = "root:x:0:\n" +
		"nobody:x:65534:\n" +
		"nonroot:x:65532:\n"
	// Go's resolver reads the hosts line: files first, then DNS.
	nsswitch = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n" +
		"networks: files\nprotocols: files\nservices: files\n"
)

// BasePath is the PATH of every image.
const BasePath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Base returns the root file system of gcr.io/distroless/static's nonroot
// flavour, made from scratch: users and groups, nsswitch.conf, the host's
// CA bundle (the binaries talk TLS to S3 and the Kubernetes API), a
// world-writable /tmp and nonroot's home. caCerts is a host path.
func Base(caCerts string) (*Layer, error) {
	if _, err := os.Stat(caCerts); err != nil {
		return nil, fmt.Errorf("images: the CA bundle %s is missing (apt-get install -y ca-certificates): %w", caCerts, err)
	}
	l := NewLayer()
	l.File("/etc/passwd", 0o644, Root, []byte(passwd))
	l.File("/etc/group", 0o644, Root, []byte(group))
	l.File("/etc/nsswitch.conf", 0o644, Root, []byte(nsswitch))
	if err := l.HostFile("/etc/ssl/certs/ca-certificates.crt", 0o644, Root, caCerts); err != nil {
		return nil, err
	}
	l.Dir("/tmp", 0o1777, Root)
	l.Dir("/root", 0o700, Root)
	l.Dir("/home/nonroot", 0o700, NonRoot)
	return l, nil
}

// CheckBusybox returns nil when path is a statically linked ELF binary,
// and otherwise an error that names the apt command installing one: the
// images have no libc for a dynamic busybox to load.
func CheckBusybox(path string) error {
	f, err := elf.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("images: %s is missing; install it with: %s", path, BusyboxInstall)
	}
	if err != nil {
		return fmt.Errorf("images: %s is not an ELF binary (%w); install a static one with: %s", path, err, BusyboxInstall)
	}
	defer func() { _ = f.Close() }() // read only
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("images: %s is dynamically linked; install the static one with: %s", path, BusyboxInstall)
		}
	}
	return nil
}

// Applets lists the applets the busybox at path was built with, from its
// own --list, without "busybox" itself.
func Applets(path string) ([]string, error) {
	out, err := exec.Command(path, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("images: %s --list: %w", path, err)
	}
	applets := slices.DeleteFunc(strings.Fields(string(out)), func(a string) bool {
		return a == "busybox" || strings.Contains(a, "/")
	})
	if len(applets) == 0 {
		return nil, fmt.Errorf("images: %s --list printed no applets", path)
	}
	return applets, nil
}

// AddBusybox puts the busybox at path in l as /bin/busybox with a relative
// symlink /bin/<applet> for each applet named.
func AddBusybox(l *Layer, path string, applets ...string) error {
	if err := CheckBusybox(path); err != nil {
		return err
	}
	if err := l.HostFile("/bin/busybox", 0o755, Root, path); err != nil {
		return err
	}
	for _, a := range applets {
		l.Symlink("/bin/"+a, "busybox")
	}
	return nil
}
