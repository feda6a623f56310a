package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/release"
)

// warmFlags are the warm-channel and node-budget flags of `channel create`
// and `channel set`.
type warmFlags struct {
	warm, medium, nodeQuota string
	noWarm                  bool
}

func (f *warmFlags) add(cmd *cobra.Command, set bool) {
	fs := cmd.Flags()
	fs.StringVar(&f.warm, "warm", "", `keep the head on the nodes whose labels match, k=v[,k=v] (every pair must match), or "all" for every node, with no pod`)
	fs.StringVar(&f.medium, "warm-medium", "", `where warm nodes keep the head: disk or memory (default disk)`)
	fs.StringVar(&f.nodeQuota, "node-quota", "", "bytes of the channel's releases each node keeps, e.g. 200Gi (0: no quota)")
	if set {
		fs.BoolVar(&f.noWarm, "no-warm", false, "stop keeping the head on nodes with no pod")
	}
}

// selector parses --warm: "all" is the empty selector.
func (f *warmFlags) selector() (map[string]string, error) {
	if strings.TrimSpace(f.warm) == "all" {
		return map[string]string{}, nil
	}
	sel := map[string]string{}
	for _, pair := range strings.Split(f.warm, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--warm %q: %q is not key=value (or give \"all\")", f.warm, pair)
		}
		if _, dup := sel[k]; dup {
			return nil, fmt.Errorf("--warm %q: label %q given twice", f.warm, k)
		}
		sel[k] = v
	}
	if err := release.ValidateLabels("--warm", sel); err != nil {
		return nil, err
	}
	return sel, nil
}

// quota parses --node-quota.
func (f *warmFlags) quota() (int64, error) {
	n, err := parseBytes(f.nodeQuota)
	if err != nil {
		return 0, fmt.Errorf("--node-quota %q: %w", f.nodeQuota, err)
	}
	return n, nil
}

// createConfig sets the warm and quota settings of a new channel.
func (f *warmFlags) createConfig(cmd *cobra.Command, cfg *release.Config) error {
	changed := cmd.Flags().Changed
	if changed("warm-medium") && !changed("warm") {
		return usageError{errors.New("--warm-medium needs --warm")}
	}
	if changed("warm") {
		sel, err := f.selector()
		if err != nil {
			return usageError{err}
		}
		cfg.Warm = &release.WarmConfig{NodeSelector: sel, Medium: f.medium}
	}
	if changed("node-quota") {
		n, err := f.quota()
		if err != nil {
			return usageError{err}
		}
		cfg.NodeQuota = n
	}
	return nil
}

// patch adds the warm and quota settings given to a merge patch. cur is
// the channel's warm config: a new selector replaces it whole, so its
// keys the new one lacks are sent as null (a merge patch would keep them).
func (f *warmFlags) patch(cmd *cobra.Command, patch map[string]any, channel string, cur *release.WarmConfig) error {
	changed := cmd.Flags().Changed
	if changed("node-quota") {
		n, err := f.quota()
		if err != nil {
			return usageError{err}
		}
		patch["nodeQuota"] = n
	}
	switch {
	case f.noWarm && (changed("warm") || changed("warm-medium")):
		return usageError{errors.New("--no-warm: not with --warm or --warm-medium")}
	case f.noWarm:
		patch["warm"] = nil
		return nil
	case !changed("warm") && !changed("warm-medium"):
		return nil
	case !changed("warm") && cur == nil:
		return usageError{fmt.Errorf("--warm-medium: channel %s is not warm; give --warm too", channel)}
	}
	warm := map[string]any{}
	if changed("warm-medium") {
		warm["medium"] = f.medium
	}
	if changed("warm") {
		sel, err := f.selector()
		if err != nil {
			return usageError{err}
		}
		next := map[string]any{}
		if cur != nil {
			for k := range cur.NodeSelector {
				next[k] = nil
			}
		}
		for k, v := range sel {
			next[k] = v
		}
		warm["nodeSelector"] = next
	}
	patch["warm"] = warm
	return nil
}

// given reports whether any warm or quota flag is given.
func (f *warmFlags) given(cmd *cobra.Command) bool {
	return f.noWarm || cmd.Flags().Changed("warm") || cmd.Flags().Changed("warm-medium") || cmd.Flags().Changed("node-quota")
}

// warmText shows a channel's warm setting.
func warmText(w *release.WarmConfig) string {
	if w == nil {
		return "no"
	}
	return w.String()
}

// wantsCurrent reports whether patch needs the channel's current warm
// config (a selector to replace, a medium to check).
func (f *warmFlags) wantsCurrent(cmd *cobra.Command) bool {
	return !f.noWarm && (cmd.Flags().Changed("warm") || cmd.Flags().Changed("warm-medium"))
}

// parseBytes reads a byte count: 0, or a number with an optional binary
// (Ki, Mi, Gi, Ti) or decimal (K, M, G, T) suffix.
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
		{"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = rest, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > release.MaxReleaseSize/mult {
		return 0, fmt.Errorf("want 0 or a size such as 200Gi, 512Mi or 1000000, at most %s", humanBytes(release.MaxReleaseSize))
	}
	return n * mult, nil
}

// quotaText shows a node quota.
func quotaText(n int64) string {
	if n <= 0 {
		return "none"
	}
	return humanBytes(n)
}

// warmSection prints, for a warm channel, its selector and the nodes that
// match it: on which medium, and whether each reports the head ready.
// Nothing for a channel that is not warm.
func warmSection(w io.Writer, d api.ChannelDetail) {
	wc := d.Channel.Config.Warm
	if wc == nil {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "WARM on %s\n", safe(wc.String()))
	if len(d.Status.Warm) == 0 {
		fmt.Fprintln(w, "(no reporting node matches)")
		return
	}
	tw := newTable(w)
	row(tw, "NODE", "MEDIUM", "HEAD "+orDash(d.Channel.Head))
	for _, n := range d.Status.Warm {
		ready := "ready"
		if !n.HeadReady {
			ready = "not yet"
		}
		if n.Stale {
			ready += " (stale)"
		}
		row(tw, n.Node, n.Medium, ready)
	}
	_ = tw.Flush()
}
