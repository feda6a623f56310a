package csi_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/hydra-csi/hydra/internal/testenv"
)

// TestBadRequests sends, over the socket, each request docs/design.md §3 and §7
// refuse, and checks the code and that the message names the field (or
// the key, channel, flag, volume) at fault.
func TestBadRequests(t *testing.T) {
	w := newWorld(t)
	for _, ch := range []string{"errs", "slow", "big"} {
		w.channel(t, ch)
	}
	w.publish(t, "errs", "v1", map[string][]byte{"a.bin": []byte("small")})
	w.publish(t, "slow", "v1", map[string][]byte{"a.bin": pattern(2, 2<<20)})
	w.publish(t, "big", "v1", map[string][]byte{"a.bin": pattern(3, 8<<20)})

	p := startPlugin(t, w, pluginConfig{})
	down := startPlugin(t, w, pluginConfig{mode: "controller", manager: "http://" + testenv.HostPort(testenv.FreePort(t))})
	proxy := testenv.StartFaultProxy(t, w.minio.Endpoint)
	proxy.SetFaults(testenv.Faults{SlowRate: 1, SlowDelay: 100 * time.Millisecond})
	slow := startPlugin(t, w, pluginConfig{s3Endpoint: proxy.URL})
	smallRoot := filepath.Join(t.TempDir(), "small")
	mountTmpfs(t, smallRoot, 4<<20)
	small := startPlugin(t, w, pluginConfig{cacheRoot: smallRoot})

	staging := filepath.Join(p.dir, "staging", "vol-errs")
	target := filepath.Join(p.dir, "target")
	ok := map[string]string{"channel": "errs"}
	with := func(k, v string) map[string]string { return map[string]string{"channel": "errs", k: v} }
	stageReq := func(id string, vc map[string]string) *csi.NodeStageVolumeRequest {
		return &csi.NodeStageVolumeRequest{VolumeId: id, StagingTargetPath: staging, VolumeCapability: mountCap(), VolumeContext: vc}
	}
	// stageOn is stageReq for another plugin, whose kubelet dir is its own.
	stageOn := func(pl *plugin, id string, vc map[string]string) *csi.NodeStageVolumeRequest {
		req := stageReq(id, vc)
		req.StagingTargetPath = filepath.Join(pl.dir, "staging", id)
		return req
	}
	create := func(params map[string]string, c *csi.VolumeCapability) *csi.CreateVolumeRequest {
		return &csi.CreateVolumeRequest{Name: "pvc-errs", Parameters: params, VolumeCapabilities: []*csi.VolumeCapability{c}}
	}
	pubReq := func() *csi.NodePublishVolumeRequest {
		return &csi.NodePublishVolumeRequest{VolumeId: "vol-unstaged", StagingTargetPath: staging, TargetPath: target,
			VolumeCapability: mountCap(), VolumeContext: ok, Readonly: true}
	}

	for _, tc := range []struct {
		name  string
		call  func(t *testing.T, ctx context.Context) error
		code  codes.Code
		words []string
	}{
		{"stage without volume_id", func(_ *testing.T, ctx context.Context) error {
			_, err := p.node.NodeStageVolume(ctx, stageReq("", ok))
			return err
		}, codes.InvalidArgument, []string{"volume_id"}},
		{"stage without staging_target_path", func(_ *testing.T, ctx context.Context) error {
			r := stageReq("vol-errs", ok)
			r.StagingTargetPath = ""
			_, err := p.node.NodeStageVolume(ctx, r)
			return err
		}, codes.InvalidArgument, []string{"staging_target_path"}},
		{"stage without volume_capability", func(_ *testing.T, ctx context.Context) error {
			r := stageReq("vol-errs", ok)
			r.VolumeCapability = nil
			_, err := p.node.NodeStageVolume(ctx, r)
			return err
		}, codes.InvalidArgument, []string{"volume_capability"}},
		{"stage with block access", func(_ *testing.T, ctx context.Context) error {
			r := stageReq("vol-errs", ok)
			r.VolumeCapability = blockCap()
			_, err := p.node.NodeStageVolume(ctx, r)
			return err
		}, codes.InvalidArgument, []string{"volume_capability.block"}},
		{"stage with an unknown attribute", func(_ *testing.T, ctx context.Context) error {
			_, err := p.node.NodeStageVolume(ctx, stageReq("vol-errs", with("colour", "red")))
			return err
		}, codes.InvalidArgument, []string{"volume_context.colour"}},
		{"stage with a bad channel name", func(_ *testing.T, ctx context.Context) error {
			_, err := p.node.NodeStageVolume(ctx, stageReq("vol-errs", map[string]string{"channel": "Bad_Name"}))
			return err
		}, codes.InvalidArgument, []string{"volume_context.channel", "Bad_Name"}},
		{"stage with a bad medium", func(_ *testing.T, ctx context.Context) error {
			_, err := p.node.NodeStageVolume(ctx, stageReq("vol-errs", with("medium", "ssd")))
			return err
		}, codes.InvalidArgument, []string{"volume_context.medium", "ssd"}},
		{"stage without a channel", func(_ *testing.T, ctx context.Context) error {
			_, err := p.node.NodeStageVolume(ctx, stageReq("vol-errs", map[string]string{"medium": "disk"}))
			return err
		}, codes.InvalidArgument, []string{"volume_context.channel"}},
		{"stage of an unknown channel", func(_ *testing.T, ctx context.Context) error {
			_, err := p.node.NodeStageVolume(ctx, stageReq("vol-errs", map[string]string{"channel": "nosuch"}))
			return err
		}, codes.NotFound, []string{"nosuch"}},
		{"stage of medium memory without a RAM tier", func(_ *testing.T, ctx context.Context) error {
			_, err := p.node.NodeStageVolume(ctx, stageReq("vol-errs", with("medium", "memory")))
			return err
		}, codes.FailedPrecondition, []string{"medium", "--memory-root"}},
		{"publish without target_path", func(_ *testing.T, ctx context.Context) error {
			r := pubReq()
			r.TargetPath = ""
			_, err := p.node.NodePublishVolume(ctx, r)
			return err
		}, codes.InvalidArgument, []string{"target_path"}},
		{"publish without staging_target_path", func(_ *testing.T, ctx context.Context) error {
			r := pubReq()
			r.StagingTargetPath = ""
			_, err := p.node.NodePublishVolume(ctx, r)
			return err
		}, codes.InvalidArgument, []string{"staging_target_path"}},
		{"publish without volume_capability", func(_ *testing.T, ctx context.Context) error {
			r := pubReq()
			r.VolumeCapability = nil
			_, err := p.node.NodePublishVolume(ctx, r)
			return err
		}, codes.InvalidArgument, []string{"volume_capability"}},
		{"publish before stage", func(_ *testing.T, ctx context.Context) error {
			_, err := p.node.NodePublishVolume(ctx, pubReq())
			return err
		}, codes.FailedPrecondition, []string{"vol-unstaged", "NodeStageVolume"}},
		{"unpublish without volume_id", func(_ *testing.T, ctx context.Context) error {
			_, err := p.node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{TargetPath: target})
			return err
		}, codes.InvalidArgument, []string{"volume_id"}},
		{"unstage without staging_target_path", func(_ *testing.T, ctx context.Context) error {
			_, err := p.node.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: "vol-errs"})
			return err
		}, codes.InvalidArgument, []string{"staging_target_path"}},
		{"create with block access", func(_ *testing.T, ctx context.Context) error {
			_, err := p.ctrl.CreateVolume(ctx, create(ok, blockCap()))
			return err
		}, codes.InvalidArgument, []string{"volume_capabilities[0].block"}},
		{"create without capabilities", func(_ *testing.T, ctx context.Context) error {
			_, err := p.ctrl.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-errs", Parameters: ok})
			return err
		}, codes.InvalidArgument, []string{"volume_capabilities"}},
		{"create with an unknown parameter", func(_ *testing.T, ctx context.Context) error {
			_, err := p.ctrl.CreateVolume(ctx, create(with("colour", "red"), mountCap()))
			return err
		}, codes.InvalidArgument, []string{"parameters.colour"}},
		{"create with a bad channel name", func(_ *testing.T, ctx context.Context) error {
			_, err := p.ctrl.CreateVolume(ctx, create(map[string]string{"channel": "Bad_Name"}, mountCap()))
			return err
		}, codes.InvalidArgument, []string{"parameters.channel", "Bad_Name"}},
		{"create with a bad medium", func(_ *testing.T, ctx context.Context) error {
			_, err := p.ctrl.CreateVolume(ctx, create(with("medium", "ssd"), mountCap()))
			return err
		}, codes.InvalidArgument, []string{"parameters.medium", "ssd"}},
		{"create of an unknown channel", func(_ *testing.T, ctx context.Context) error {
			_, err := p.ctrl.CreateVolume(ctx, create(map[string]string{"channel": "nosuch"}, mountCap()))
			return err
		}, codes.NotFound, []string{"nosuch"}},
		{"create with the manager down", func(_ *testing.T, ctx context.Context) error {
			_, err := down.ctrl.CreateVolume(ctx, create(ok, mountCap()))
			return err
		}, codes.Unavailable, []string{"errs"}},
		{"stage of a release too big for the cache", func(_ *testing.T, ctx context.Context) error {
			_, err := small.node.NodeStageVolume(ctx, stageOn(small, "vol-big", map[string]string{"channel": "big"}))
			return err
		}, codes.ResourceExhausted, []string{"big/v1", smallRoot}},
		{"a second stage while the first downloads", func(t *testing.T, _ context.Context) error {
			return raceStage(t, slow, proxy, stageOn(slow, "vol-slow", map[string]string{"channel": "slow"}))
		}, codes.Aborted, []string{"vol-slow"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			wantCode(t, tc.call(t, ctx), tc.code, tc.words...)
		})
	}
}

// raceStage starts a NodeStageVolume that downloads through the slow
// proxy, waits until its download has begun (so it holds the volume), and
// returns what a second, identical call gets.
func raceStage(t *testing.T, p *plugin, proxy *testenv.FaultProxy, req *csi.NodeStageVolumeRequest) error {
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := p.node.NodeStageVolume(ctx, req)
		first <- err
	}()
	defer func() {
		cancel()
		if err := <-first; err == nil {
			t.Log("the first stage finished before it was cancelled")
		}
	}()
	waitFor(t, time.Minute, "the first stage's download to begin", func() bool {
		select {
		case err := <-first:
			first <- err
			t.Fatalf("the first stage ended before its download began: %v", err)
		default:
		}
		return proxy.Requests() > 0
	})
	second, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	_, err := p.node.NodeStageVolume(second, req)
	select {
	case err := <-first:
		first <- err
		return fmt.Errorf("the first stage ended (%w) while the second ran: no race", err)
	default:
	}
	return err
}
