package release

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of a channel's configuration (docs/design.md §5, §6).
const (
	DefaultKeep           = 10
	DefaultNodeKeep       = 2
	DefaultMaxUnavailable = 1
	DefaultDrain          = 30 * time.Second
	DefaultReloadTimeout  = 5 * time.Minute
	// maxKeep bounds retention so a typo cannot make a channel's release
	// list grow without limit.
	maxKeep = 10000
)

// Config is what an operator sets on a channel.
type Config struct {
	// Keep is how many releases the manager retains (newest by publish order).
	Keep int `json:"keep"`
	// MaxAge removes releases older than this; zero means no age limit.
	MaxAge Duration `json:"maxAge"`
	// NodeKeep is how many releases each node keeps in its local store.
	NodeKeep int `json:"nodeKeep"`
	// Rollout is how the controller moves pods to a new head.
	Rollout RolloutPolicy `json:"rollout"`
	// RequireMarker, when set, is the key (relative to each dataset's
	// prefix) whose presence marks a dataset's upload as finished, such as
	// _SUCCESS; hydra publish refuses a version without it and
	// --version auto passes over such versions. The marker is not part of
	// the manifest.
	RequireMarker string `json:"requireMarker,omitempty"`
	// MinObjects, when set, is the fewest files a dataset may have: hydra
	// publish refuses (and --version auto passes over) a version with fewer.
	MinObjects int `json:"minObjects,omitempty"`
	// Warm, when set, names the nodes that keep the head with no pod.
	Warm *WarmConfig `json:"warm,omitempty"`
	// NodeQuota, when positive, bounds the bytes of the channel's
	// releases each node keeps; past it the node evicts what nothing
	// needs, least recently used first (docs/node.md, disk budgets).
	NodeQuota int64 `json:"nodeQuota,omitempty"`
}

// RolloutPolicy governs the readiness-drained rollout (docs/design.md §6).
type RolloutPolicy struct {
	// MaxUnavailable is how many pods of one workload may be drained at once.
	MaxUnavailable int `json:"maxUnavailable"`
	// Drain is the longest wait for a pod to leave its Service endpoints.
	Drain Duration `json:"drain"`
	// ReloadTimeout is how long a pod has to become Ready after a flip.
	ReloadTimeout Duration `json:"reloadTimeout"`
}

// WithDefaults fills every zero field with its default.
func (c Config) WithDefaults() Config {
	if c.Keep == 0 {
		c.Keep = DefaultKeep
	}
	if c.NodeKeep == 0 {
		c.NodeKeep = DefaultNodeKeep
	}
	if c.Rollout.MaxUnavailable == 0 {
		c.Rollout.MaxUnavailable = DefaultMaxUnavailable
	}
	if c.Rollout.Drain.Duration == 0 {
		c.Rollout.Drain.Duration = DefaultDrain
	}
	if c.Rollout.ReloadTimeout.Duration == 0 {
		c.Rollout.ReloadTimeout.Duration = DefaultReloadTimeout
	}
	return c
}

// Validate checks a configuration after defaults are applied.
func (c Config) Validate() error {
	switch {
	case c.Keep < 1 || c.Keep > maxKeep:
		return invalid("keep", fmt.Sprint(c.Keep), "must be between 1 and %d", maxKeep)
	case c.MaxAge.Duration < 0:
		return invalid("maxAge", c.MaxAge.String(), "must not be negative")
	case c.NodeKeep < 1 || c.NodeKeep > maxKeep:
		return invalid("nodeKeep", fmt.Sprint(c.NodeKeep), "must be between 1 and %d", maxKeep)
	case c.Rollout.MaxUnavailable < 1:
		return invalid("rollout.maxUnavailable", fmt.Sprint(c.Rollout.MaxUnavailable), "must be at least 1")
	case c.Rollout.Drain.Duration < 0:
		return invalid("rollout.drain", c.Rollout.Drain.String(), "must not be negative")
	case c.Rollout.ReloadTimeout.Duration <= 0:
		return invalid("rollout.reloadTimeout", c.Rollout.ReloadTimeout.String(), "must be positive")
	case c.MinObjects < 0:
		return invalid("minObjects", fmt.Sprint(c.MinObjects), "must not be negative")
	case c.NodeQuota < 0 || c.NodeQuota > MaxReleaseSize:
		return invalid("nodeQuota", fmt.Sprint(c.NodeQuota), "must be 0 (none) to %d bytes", int64(MaxReleaseSize))
	}
	if err := c.Warm.Validate(); err != nil {
		return err
	}
	if c.RequireMarker != "" {
		var fe *FieldError
		if err := ValidatePath(c.RequireMarker); errors.As(err, &fe) {
			return invalid("requireMarker", c.RequireMarker, "a key below each dataset's prefix %s", fe.Reason)
		}
	}
	return nil
}

// Channel is a named stream of releases with its head pointer.
type Channel struct {
	Name   string `json:"name"`
	Config Config `json:"config"`
	// Head is the version consumers should run; empty before the first
	// promoted publish.
	Head string `json:"head,omitempty"`
	// Pinned, when set, holds the head at this version: publishes are kept
	// but do not promote until the channel is unpinned.
	Pinned string `json:"pinned,omitempty"`
	// Paused stops the rollout controller from moving pods; Reason says why
	// (set by an operator or by the controller after a failed pod).
	Paused      bool   `json:"paused,omitempty"`
	PauseReason string `json:"pauseReason,omitempty"`
	// ReleaseCount is how many releases the channel holds (filled on reads);
	// on the wire and in the store it is "releases" (docs/design.md §11).
	ReleaseCount int       `json:"releases"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

// Validate checks the channel's name and configuration.
func (c Channel) Validate() error {
	if err := validateLabel("name", c.Name); err != nil {
		return err
	}
	if err := c.Config.Validate(); err != nil {
		return prefixed("config", err)
	}
	return nil
}
