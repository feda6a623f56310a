package client

import (
	"context"
	"net/http"
	"time"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/release"
)

// CreateChannel creates a channel; zero config fields take defaults.
func (c *Client) CreateChannel(ctx context.Context, name string, cfg release.Config) (release.Channel, error) {
	var ch release.Channel
	err := c.do(ctx, http.MethodPost, "/v1/channels", nil, api.CreateChannelRequest{Name: name, Config: cfg}, &ch)
	return ch, err
}

// ListChannels lists every channel.
func (c *Client) ListChannels(ctx context.Context) ([]release.Channel, error) {
	var out api.ChannelList
	err := c.do(ctx, http.MethodGet, "/v1/channels", nil, nil, &out)
	return out.Channels, err
}

// GetChannel returns a channel with its releases and status.
func (c *Client) GetChannel(ctx context.Context, name string) (api.ChannelDetail, error) {
	var out api.ChannelDetail
	err := c.do(ctx, http.MethodGet, "/v1/channels/"+seg(name), nil, nil, &out)
	return out, err
}

// DeleteChannel deletes a channel (refused while volumes use it).
func (c *Client) DeleteChannel(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/channels/"+seg(name), nil, nil, nil)
}

// ChannelStatus returns per-node progress and per-pod releases.
func (c *Client) ChannelStatus(ctx context.Context, name string) (api.ChannelStatus, error) {
	var out api.ChannelStatus
	err := c.do(ctx, http.MethodGet, "/v1/channels/"+seg(name)+"/status", nil, nil, &out)
	return out, err
}

// SetHead moves the head to version.
func (c *Client) SetHead(ctx context.Context, name, version string) (release.Channel, error) {
	return c.channelOp(ctx, http.MethodPut, name, "/head", api.VersionRequest{Version: version})
}

// Rollback moves the head to `to`, or undoes the newest head move not yet
// undone.
func (c *Client) Rollback(ctx context.Context, name, to string) (release.Channel, error) {
	return c.channelOp(ctx, http.MethodPost, name, "/rollback", api.RollbackRequest{To: to})
}

// Pin holds the head at version.
func (c *Client) Pin(ctx context.Context, name, version string) (release.Channel, error) {
	return c.channelOp(ctx, http.MethodPut, name, "/pin", api.VersionRequest{Version: version})
}

// Unpin releases the pin; the head moves to the newest release published
// with promotion while pinned, else back to the head before the pin.
func (c *Client) Unpin(ctx context.Context, name string) (release.Channel, error) {
	return c.channelOp(ctx, http.MethodDelete, name, "/pin", nil)
}

// PatchConfig changes a channel's settings with a JSON merge patch of its
// config ({"keep": 5, "rollout": {"drain": "1m"}}; null resets a setting
// to its default).
func (c *Client) PatchConfig(ctx context.Context, name string, patch map[string]any) (api.ConfigResponse, error) {
	var out api.ConfigResponse
	err := c.do(ctx, http.MethodPatch, "/v1/channels/"+seg(name)+"/config", nil, patch, &out)
	return out, err
}

// Pause stops the channel's rollouts.
func (c *Client) Pause(ctx context.Context, name, reason string) (release.Channel, error) {
	return c.channelOp(ctx, http.MethodPost, name, "/pause", api.PauseRequest{Reason: reason})
}

// Resume lets the channel's rollouts continue.
func (c *Client) Resume(ctx context.Context, name string) (release.Channel, error) {
	return c.channelOp(ctx, http.MethodPost, name, "/resume", struct{}{})
}

func (c *Client) channelOp(ctx context.Context, method, name, suffix string, in any) (release.Channel, error) {
	var ch release.Channel
	err := c.do(ctx, method, "/v1/channels/"+seg(name)+suffix, nil, in, &ch)
	return ch, err
}

// Publish publishes a release to a channel.
func (c *Client) Publish(ctx context.Context, channel string, req api.PublishRequest) (api.PublishResponse, error) {
	var out api.PublishResponse
	err := c.do(ctx, http.MethodPost, "/v1/channels/"+seg(channel)+"/releases", nil, req, &out)
	return out, err
}

// ListReleases lists a channel's releases in publish order.
func (c *Client) ListReleases(ctx context.Context, channel string) ([]release.Summary, error) {
	var out api.ReleaseList
	err := c.do(ctx, http.MethodGet, "/v1/channels/"+seg(channel)+"/releases", nil, nil, &out)
	return out.Releases, err
}

// GetRelease returns a release's summary.
func (c *Client) GetRelease(ctx context.Context, channel, version string) (release.Summary, error) {
	var out release.Summary
	err := c.do(ctx, http.MethodGet, "/v1/channels/"+seg(channel)+"/releases/"+seg(version), nil, nil, &out)
	return out, err
}

// GetManifest returns a release with its manifests.
func (c *Client) GetManifest(ctx context.Context, channel, version string) (release.Release, error) {
	var out release.Release
	err := c.do(ctx, http.MethodGet, "/v1/channels/"+seg(channel)+"/releases/"+seg(version)+"/manifest", nil, nil, &out)
	return out, err
}

// DeleteRelease removes a release that is not the head, not pinned and
// not in use by a view.
func (c *Client) DeleteRelease(ctx context.Context, channel, version string) error {
	return c.do(ctx, http.MethodDelete, "/v1/channels/"+seg(channel)+"/releases/"+seg(version), nil, nil, nil)
}

// History returns a channel's head moves, oldest first.
func (c *Client) History(ctx context.Context, channel string) ([]release.HeadMove, error) {
	var out api.History
	err := c.do(ctx, http.MethodGet, "/v1/channels/"+seg(channel)+"/history", nil, nil, &out)
	return out.Moves, err
}

// ListNodes returns every node's last report, stamped with the manager's
// receipt time and marked stale past the manager's TTL.
func (c *Client) ListNodes(ctx context.Context) ([]api.NodeReport, error) {
	var out api.NodeList
	err := c.do(ctx, http.MethodGet, "/v1/nodes", nil, nil, &out)
	return out.Nodes, err
}

// ForgetNode drops a node's report (admin): its views stop protecting
// releases and blocking channel deletion. For a node that is gone; a live
// node's next report brings it back.
func (c *Client) ForgetNode(ctx context.Context, node string) error {
	return c.do(ctx, http.MethodDelete, "/v1/nodes/"+seg(node), nil, nil, nil)
}

// Desired long-polls a node's desired state: it answers when the state's
// index differs from index (0: at once) or after wait with the same index.
func (c *Client) Desired(ctx context.Context, node string, index uint64, wait time.Duration) (release.Desired, error) {
	var out release.Desired
	err := c.do(ctx, http.MethodGet, "/v1/nodes/"+seg(node)+"/desired", waitQuery(index, wait), nil, &out)
	return out, err
}

// ReportStatus sends a node's status report.
func (c *Client) ReportStatus(ctx context.Context, st release.NodeStatus) error {
	return c.do(ctx, http.MethodPut, "/v1/nodes/"+seg(st.Node)+"/status", nil, st, nil)
}
