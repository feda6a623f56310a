package release_test

import (
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
)

func dur(d time.Duration) release.Duration { return release.Duration{Duration: d} }

func TestConfigWithDefaults(t *testing.T) {
	defaults := release.Config{
		Keep:     release.DefaultKeep,
		NodeKeep: release.DefaultNodeKeep,
		Rollout: release.RolloutPolicy{
			MaxUnavailable: release.DefaultMaxUnavailable,
			Drain:          dur(release.DefaultDrain),
			ReloadTimeout:  dur(release.DefaultReloadTimeout),
		},
	}
	custom := release.Config{
		Keep:     3,
		MaxAge:   dur(168 * time.Hour),
		NodeKeep: 5,
		Rollout:  release.RolloutPolicy{MaxUnavailable: 4, Drain: dur(time.Second), ReloadTimeout: dur(time.Minute)},
	}
	negative := release.Config{
		Keep:     -1,
		MaxAge:   dur(-time.Hour),
		NodeKeep: -2,
		Rollout:  release.RolloutPolicy{MaxUnavailable: -3, Drain: dur(-time.Second), ReloadTimeout: dur(-time.Minute)},
	}
	tests := []struct {
		name string
		in   release.Config
		want release.Config
	}{
		{name: "zero gets every default", in: release.Config{}, want: defaults},
		{name: "set values are kept", in: custom, want: custom},
		{name: "negative values are kept for Validate to refuse", in: negative, want: negative},
		{
			name: "only zero fields filled",
			in:   release.Config{Keep: 7, Rollout: release.RolloutPolicy{Drain: dur(2 * time.Second)}},
			want: release.Config{
				Keep:     7,
				NodeKeep: release.DefaultNodeKeep,
				Rollout: release.RolloutPolicy{
					MaxUnavailable: release.DefaultMaxUnavailable,
					Drain:          dur(2 * time.Second),
					ReloadTimeout:  dur(release.DefaultReloadTimeout),
				},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.WithDefaults(); got != tc.want {
				t.Errorf("WithDefaults() = %+v, want %+v", got, tc.want)
			}
		})
	}
	if err := (release.Config{}).WithDefaults().Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*release.Config)
		field  string // empty: must be accepted
	}{
		{name: "defaults", mutate: func(*release.Config) {}},
		{name: "keep 1", mutate: func(c *release.Config) { c.Keep = 1 }},
		{name: "keep 10000", mutate: func(c *release.Config) { c.Keep = 10000 }},
		{name: "keep 0", mutate: func(c *release.Config) { c.Keep = 0 }, field: "keep"},
		{name: "keep -1", mutate: func(c *release.Config) { c.Keep = -1 }, field: "keep"},
		{name: "keep 10001", mutate: func(c *release.Config) { c.Keep = 10001 }, field: "keep"},
		{name: "maxAge 0", mutate: func(c *release.Config) { c.MaxAge = dur(0) }},
		{name: "maxAge week", mutate: func(c *release.Config) { c.MaxAge = dur(168 * time.Hour) }},
		{name: "maxAge negative", mutate: func(c *release.Config) { c.MaxAge = dur(-time.Nanosecond) }, field: "maxAge"},
		{name: "nodeKeep 1", mutate: func(c *release.Config) { c.NodeKeep = 1 }},
		{name: "nodeKeep 10000", mutate: func(c *release.Config) { c.NodeKeep = 10000 }},
		{name: "nodeKeep 0", mutate: func(c *release.Config) { c.NodeKeep = 0 }, field: "nodeKeep"},
		{name: "nodeKeep 10001", mutate: func(c *release.Config) { c.NodeKeep = 10001 }, field: "nodeKeep"},
		{name: "maxUnavailable 1", mutate: func(c *release.Config) { c.Rollout.MaxUnavailable = 1 }},
		{name: "maxUnavailable 100", mutate: func(c *release.Config) { c.Rollout.MaxUnavailable = 100 }},
		{name: "maxUnavailable 0", mutate: func(c *release.Config) { c.Rollout.MaxUnavailable = 0 }, field: "rollout.maxUnavailable"},
		{name: "maxUnavailable -1", mutate: func(c *release.Config) { c.Rollout.MaxUnavailable = -1 }, field: "rollout.maxUnavailable"},
		{name: "drain 0", mutate: func(c *release.Config) { c.Rollout.Drain = dur(0) }},
		{name: "drain negative", mutate: func(c *release.Config) { c.Rollout.Drain = dur(-time.Second) }, field: "rollout.drain"},
		{name: "reloadTimeout 1ns", mutate: func(c *release.Config) { c.Rollout.ReloadTimeout = dur(1) }},
		{name: "reloadTimeout 0", mutate: func(c *release.Config) { c.Rollout.ReloadTimeout = dur(0) }, field: "rollout.reloadTimeout"},
		{name: "reloadTimeout negative", mutate: func(c *release.Config) { c.Rollout.ReloadTimeout = dur(-time.Second) }, field: "rollout.reloadTimeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := release.Config{}.WithDefaults()
			tc.mutate(&c)
			checkErr(t, c.Validate(), tc.field, "")
		})
	}
}

func TestChannelValidate(t *testing.T) {
	good := release.Channel{Name: "search-index", Config: release.Config{}.WithDefaults()}
	tests := []struct {
		name   string
		mutate func(*release.Channel)
		field  string // empty: must be accepted
		reason string
	}{
		{name: "good", mutate: func(*release.Channel) {}},
		{name: "paused with head", mutate: func(c *release.Channel) { c.Head, c.Paused, c.PauseReason = "v1", true, "manual" }},
		{name: "empty name", mutate: func(c *release.Channel) { c.Name = "" }, field: "name", reason: "must not be empty"},
		{name: "upper-case name", mutate: func(c *release.Channel) { c.Name = "Search" }, field: "name", reason: "lower-case"},
		{name: "config without defaults", mutate: func(c *release.Channel) { c.Config = release.Config{} }, field: "config.keep"},
		{name: "bad keep", mutate: func(c *release.Channel) { c.Config.Keep = -5 }, field: "config.keep", reason: "between 1 and 10000"},
		{name: "bad nodeKeep", mutate: func(c *release.Channel) { c.Config.NodeKeep = 0 }, field: "config.nodeKeep"},
		{name: "bad maxAge", mutate: func(c *release.Channel) { c.Config.MaxAge = dur(-time.Hour) }, field: "config.maxAge"},
		{name: "bad drain", mutate: func(c *release.Channel) { c.Config.Rollout.Drain = dur(-1) }, field: "config.rollout.drain"},
		{name: "bad reloadTimeout", mutate: func(c *release.Channel) { c.Config.Rollout.ReloadTimeout = dur(0) }, field: "config.rollout.reloadTimeout"},
		{name: "bad maxUnavailable", mutate: func(c *release.Channel) { c.Config.Rollout.MaxUnavailable = 0 }, field: "config.rollout.maxUnavailable"},
		{name: "bad name wins over bad config", mutate: func(c *release.Channel) { c.Name, c.Config.Keep = "-", 0 }, field: "name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mutate(&c)
			checkErr(t, c.Validate(), tc.field, tc.reason)
		})
	}
}
