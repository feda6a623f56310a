package main

import (
	"context"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// csiClient makes the calls kubelet and csi-provisioner would make.
type csiClient struct {
	conn       *grpc.ClientConn
	controller csi.ControllerClient
	node       csi.NodeClient
}

func dialCSI(sock string) (*csiClient, error) {
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", sock, err)
	}
	return &csiClient{conn: conn, controller: csi.NewControllerClient(conn), node: csi.NewNodeClient(conn)}, nil
}

func (c *csiClient) close() { _ = c.conn.Close() }

// mountCapability is a read-only filesystem volume, as a PVC of
// ReadOnlyMany would ask.
func mountCapability() *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY},
	}
}

func (c *csiClient) createVolume(ctx context.Context, name, channel string) (*csi.Volume, error) {
	resp, err := c.controller.CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name:               name,
		Parameters:         map[string]string{"channel": channel},
		VolumeCapabilities: []*csi.VolumeCapability{mountCapability()},
	})
	if err != nil {
		return nil, fmt.Errorf("CreateVolume: %w", err)
	}
	return resp.Volume, nil
}

func (c *csiClient) stage(ctx context.Context, vol *csi.Volume, staging string) error {
	_, err := c.node.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{
		VolumeId: vol.VolumeId, StagingTargetPath: staging, VolumeCapability: mountCapability(), VolumeContext: vol.VolumeContext,
	})
	if err != nil {
		return fmt.Errorf("NodeStageVolume: %w", err)
	}
	return nil
}

// publish passes the pod identity kubelet adds with podInfoOnMount.
func (c *csiClient) publish(ctx context.Context, vol *csi.Volume, staging, target string) error {
	vc := map[string]string{
		"csi.storage.k8s.io/pod.name":      "web-0",
		"csi.storage.k8s.io/pod.namespace": "demo",
		"csi.storage.k8s.io/pod.uid":       "5b1f7a4e-demo-pod",
	}
	for k, v := range vol.VolumeContext {
		vc[k] = v
	}
	_, err := c.node.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
		VolumeId: vol.VolumeId, StagingTargetPath: staging, TargetPath: target,
		VolumeCapability: mountCapability(), Readonly: true, VolumeContext: vc,
	})
	if err != nil {
		return fmt.Errorf("NodePublishVolume: %w", err)
	}
	return nil
}

func (c *csiClient) cleanup(ctx context.Context, vol *csi.Volume, staging, target string) error {
	if _, err := c.node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: vol.VolumeId, TargetPath: target}); err != nil {
		return fmt.Errorf("NodeUnpublishVolume: %w", err)
	}
	if _, err := c.node.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: vol.VolumeId, StagingTargetPath: staging}); err != nil {
		return fmt.Errorf("NodeUnstageVolume: %w", err)
	}
	if _, err := c.controller.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: vol.VolumeId}); err != nil {
		return fmt.Errorf("DeleteVolume: %w", err)
	}
	return nil
}
