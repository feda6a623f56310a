package driver

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/hydra-csi/hydra/pkg/release"
)

// Volume attributes (docs/design.md §3): StorageClass parameters, PV
// volumeAttributes, inline volume attributes, and the volume context that
// CreateVolume returns.
const (
	AttrChannel = "channel"
	AttrMedium  = "medium"
	AttrRelease = "release"
	AttrManager = "manager"
)

// Keys that Kubernetes adds: csi-provisioner's --extra-create-metadata
// parameters and kubelet's podInfoOnMount / ephemeral context.
const (
	k8sPrefix = "csi.storage.k8s.io/"
	// provisionerPrefix is csi-provisioner's own: every PV it makes carries
	// storage.kubernetes.io/csiProvisionerIdentity in its volume attributes,
	// which kubelet hands to NodeStage and NodePublish.
	provisionerPrefix = "storage.kubernetes.io/"
	paramPVCName      = k8sPrefix + "pvc/name"
	paramPVCNs        = k8sPrefix + "pvc/namespace"
	ctxPodName        = k8sPrefix + "pod.name"
	ctxPodNamespace   = k8sPrefix + "pod.namespace"
	ctxPodUID         = k8sPrefix + "pod.uid"
	ctxEphemeral      = k8sPrefix + "ephemeral"

	// AnnotationChannel and AnnotationRelease on a PVC choose its channel
	// (and pin) when the StorageClass has no channel parameter.
	AnnotationChannel = "hydra.csi.dev/channel"
	AnnotationRelease = "hydra.csi.dev/release"
)

// maxIDLength bounds volume IDs: they are path components of views.
const maxIDLength = 128

var knownAttrs = []string{AttrChannel, AttrMedium, AttrRelease, AttrManager}

// volumeAttrs are the resolved attributes of a volume.
type volumeAttrs struct {
	Channel, Medium string
	// Version pins the volume to one release (the attribute "release").
	// Stage records on disk keep the JSON key it had as Release.
	Version string `json:"Release"`
	Manager string
}

// context returns the attributes as a volume context, empty keys left out.
func (a volumeAttrs) context() map[string]string {
	out := map[string]string{AttrChannel: a.Channel, AttrMedium: a.Medium}
	if a.Version != "" {
		out[AttrRelease] = a.Version
	}
	if a.Manager != "" {
		out[AttrManager] = a.Manager
	}
	return out
}

// invalid is a bad field of a request; it wraps release.ErrInvalid, so it
// maps to InvalidArgument, and its text starts with the field's name.
func invalid(field, value, format string, args ...any) error {
	const maxShown = 80
	if len(value) > maxShown {
		value = value[:maxShown] + "..."
	}
	return &release.FieldError{Field: field, Value: value, Reason: fmt.Sprintf(format, args...)}
}

// parseAttrs checks the attributes in m (field names them in errors:
// "parameters", "volume_context"). Keys under csi.storage.k8s.io/ and
// storage.kubernetes.io/ are Kubernetes' and ignored here. The channel may be missing only when
// channelOptional (CreateVolume reads it from the PVC then).
func parseAttrs(field string, m map[string]string, channelOptional bool) (volumeAttrs, error) {
	for k := range m {
		if !slices.Contains(knownAttrs, k) && !strings.HasPrefix(k, k8sPrefix) && !strings.HasPrefix(k, provisionerPrefix) {
			return volumeAttrs{}, invalid(field+"."+k, "", "unknown attribute; the known ones are %s", strings.Join(knownAttrs, ", "))
		}
	}
	a := volumeAttrs{Channel: m[AttrChannel], Medium: m[AttrMedium], Version: m[AttrRelease], Manager: m[AttrManager]}
	if a.Medium == "" {
		a.Medium = release.MediumDisk
	}
	if err := a.validate(field, channelOptional); err != nil {
		return volumeAttrs{}, err
	}
	return a, nil
}

func (a volumeAttrs) validate(field string, channelOptional bool) error {
	switch {
	case a.Channel == "" && channelOptional:
	case a.Channel == "":
		return invalid(field+"."+AttrChannel, "", "is required")
	case release.ValidateChannelName(a.Channel) != nil:
		return invalid(field+"."+AttrChannel, a.Channel, "must be a DNS-1123 label of at most 63 characters")
	}
	if a.Medium != release.MediumDisk && a.Medium != release.MediumMemory {
		return invalid(field+"."+AttrMedium, a.Medium, "must be %q or %q", release.MediumDisk, release.MediumMemory)
	}
	if a.Version != "" && release.ValidateVersion(a.Version) != nil {
		return invalid(field+"."+AttrRelease, a.Version, "must match [A-Za-z0-9][A-Za-z0-9._-]{0,127}")
	}
	if a.Manager != "" {
		u, err := url.Parse(a.Manager)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return invalid(field+"."+AttrManager, a.Manager, "must be an http(s)://HOST[:PORT] URL")
		}
	}
	return nil
}

// checkCapabilities refuses what a read-only file tree cannot be: block
// devices. Any access mode is accepted, since every publish is read-only
// whatever the mode (the data is immutable).
func checkCapabilities(field string, caps []*csi.VolumeCapability) error {
	if len(caps) == 0 {
		return invalid(field, "", "is required")
	}
	for i, c := range caps {
		if err := checkCapability(fmt.Sprintf("%s[%d]", field, i), c); err != nil {
			return err
		}
	}
	return nil
}

func checkCapability(field string, c *csi.VolumeCapability) error {
	switch {
	case c == nil:
		return invalid(field, "", "is required")
	case c.GetBlock() != nil:
		return invalid(field+".block", "", "block access is not supported: hydra volumes are read-only file trees")
	case c.GetMount() == nil:
		return invalid(field+".access_type", "", "must be mount")
	case c.GetAccessMode() == nil || c.GetAccessMode().GetMode() == csi.VolumeCapability_AccessMode_UNKNOWN:
		return invalid(field+".access_mode", "", "is required")
	}
	return nil
}

// checkVolumeID refuses IDs that cannot name a view directory.
func checkVolumeID(id string) error {
	switch {
	case id == "":
		return invalid("volume_id", "", "is required")
	case len(id) > maxIDLength:
		return invalid("volume_id", id, "must be at most %d bytes", maxIDLength)
	case id[0] == '.' || strings.ContainsAny(id, "/\x00"):
		return invalid("volume_id", id, "must not start with '.' or contain '/' or NUL")
	}
	return nil
}

// checkPath requires an absolute, clean path in field.
func checkPath(field, p string) error {
	switch {
	case p == "":
		return invalid(field, "", "is required")
	case !filepath.IsAbs(p):
		return invalid(field, p, "must be an absolute path")
	case strings.ContainsRune(p, 0):
		return invalid(field, p, "must not contain NUL")
	}
	return nil
}
