package cache

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/pkg/release"
)

// validateFields checks what validateViewIDs does not.
func (s ViewRecord) validateFields() error {
	if err := release.ValidateChannelName(s.Channel); err != nil {
		return err
	}
	switch s.Medium {
	case "", release.MediumDisk, release.MediumMemory:
	default:
		return &release.FieldError{Field: "medium", Value: shortID(s.Medium), Reason: fmt.Sprintf("must be %q or %q", release.MediumDisk, release.MediumMemory)}
	}
	if s.Pinned != "" {
		if err := release.ValidateVersion(s.Pinned); err != nil {
			return relabelField("pinned", err)
		}
	}
	return nil
}

func (s ViewRecord) logKeys(more ...any) []any {
	return append([]any{"volumeID", s.VolumeID, "pod", klog.KRef(s.PodNamespace, s.PodName),
		"podUID", s.PodUID, "channel", s.Channel}, more...)
}

// validateViewIDs refuses IDs that cannot be path components of a view.
func validateViewIDs(volumeID, podUID string) error {
	if err := validateViewID("volumeID", volumeID); err != nil {
		return err
	}
	if err := validateViewID("podUID", podUID); err != nil {
		return err
	}
	if strings.HasSuffix(podUID, recordSuffix) {
		// The view dir of "x.json" would be the record of "x".
		return &release.FieldError{Field: "podUID", Value: shortID(podUID), Reason: `must not end in ".json"`}
	}
	return nil
}

func validateViewID(field, id string) error {
	var reason string
	switch {
	case id == "":
		reason = "must not be empty"
	case len(id) > maxViewIDLength:
		reason = fmt.Sprintf("must be at most %d bytes", maxViewIDLength)
	case id[0] == '.':
		reason = `must not start with '.' (no "." or "..", no temp names)`
	case strings.ContainsAny(id, "/\x00"):
		reason = "must not contain '/' or NUL"
	default:
		return nil
	}
	return &release.FieldError{Field: field, Value: shortID(id), Reason: reason}
}

// shortID caps a value quoted in an error, as package release does.
func shortID(s string) string {
	const maxShown = 80
	if len(s) > maxShown {
		return s[:maxShown] + "..."
	}
	return s
}

// relabelField renames the field of a release.FieldError.
func relabelField(field string, err error) error {
	var fe *release.FieldError
	if errors.As(err, &fe) {
		c := *fe
		c.Field = field
		return &c
	}
	return err
}

// isDirNoFollow reports a directory, not a symlink to one.
func isDirNoFollow(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.IsDir()
}
