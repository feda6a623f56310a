package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
)

// space gives back the disk and RAM that no live data uses, so that the
// cache's space check counts only what pods use or will:
//  1. the releases of channels the manager no longer has (answered
//     NotFound), once no view on the node uses them;
//  2. partial downloads nothing wrote to for PartialGrace (a download
//     the node gave up on, a volume gone before its release arrived).
func (a *Agent) space(ctx context.Context, d release.Desired, views []cache.ViewInfo) error {
	gone, err := a.deletedChannels(ctx, d, views)
	errs := []error{err}
	for _, ch := range gone { // (1)
		removed, err := a.opts.Cache.RemoveChannel(ch)
		errs = append(errs, err)
		if a.opts.Memory != nil {
			_, err := a.opts.Memory.Retain(ch, nil)
			errs = append(errs, err)
		}
		a.log().V(2).Info("removed the releases of a deleted channel from the node", "channel", ch, "releases", removed)
	}
	_, err = a.opts.Cache.SweepPartials(a.opts.PartialGrace) // (2)
	return errors.Join(append(errs, err)...)
}

// deletedChannels are the channels stored on the node that no view or
// staged volume uses, that the desired state does not name, and that the manager answers
// NotFound for. A channel the desired state names exists; one a view uses
// stays until its pods go, whatever the manager says.
func (a *Agent) deletedChannels(ctx context.Context, d release.Desired, views []cache.ViewInfo) ([]string, error) {
	stored, err := a.opts.Cache.StoredReleases()
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	if a.opts.Staged != nil {
		staged, err := a.opts.Staged()
		if err != nil {
			return nil, err
		}
		for ch := range staged {
			keep[ch] = true
		}
	}
	for _, ch := range d.Channels {
		keep[ch.Name] = true
	}
	for _, v := range views {
		keep[v.Channel] = true
	}
	var gone []string
	for _, p := range stored {
		if keep[p.Channel] {
			continue
		}
		keep[p.Channel] = true // asked once per pass
		_, err := a.opts.Client.GetChannel(ctx, p.Channel)
		switch {
		case client.IsNotFound(err):
			gone = append(gone, p.Channel)
		case err != nil:
			return gone, fmt.Errorf("agent: does channel %s still exist: %w", p.Channel, err)
		}
	}
	return gone, nil
}
