package driver

import (
	"context"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
)

// TestLogRPCContextLogger checks that a handler's klog.FromContext(ctx)
// carries the RPC's method and, where the request names one, its volume ID.
func TestLogRPCContextLogger(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		req      any
		volumeID string // "" when the request names none
	}{
		{"stage", "/csi.v1.Node/NodeStageVolume", &csi.NodeStageVolumeRequest{VolumeId: "hydra-a-0123456789abcdef"}, "hydra-a-0123456789abcdef"},
		{"publish", "/csi.v1.Node/NodePublishVolume", &csi.NodePublishVolumeRequest{VolumeId: "vol-2"}, "vol-2"},
		{"delete", "/csi.v1.Controller/DeleteVolume", &csi.DeleteVolumeRequest{VolumeId: "vol-3"}, "vol-3"},
		{"empty volume ID", "/csi.v1.Node/NodeUnstageVolume", &csi.NodeUnstageVolumeRequest{}, ""},
		{"no volume ID", "/csi.v1.Controller/CreateVolume", &csi.CreateVolumeRequest{Name: "pvc-1"}, ""},
		{"identity", "/csi.v1.Identity/GetPluginInfo", &csi.GetPluginInfoRequest{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.BufferLogs(true)))
			ctx := klog.NewContext(context.Background(), logger)
			handler := func(ctx context.Context, _ any) (any, error) {
				klog.FromContext(ctx).Info("in handler")
				return nil, nil
			}
			if _, err := logRPC(ctx, tt.req, &grpc.UnaryServerInfo{FullMethod: tt.method}, handler); err != nil {
				t.Fatalf("logRPC: %v", err)
			}
			buf := logger.GetSink().(ktesting.Underlier).GetBuffer()
			var kv map[string]any
			for _, e := range buf.Data() {
				if e.Message == "in handler" {
					kv = kvMap(e.WithKVList)
				}
			}
			if kv == nil {
				t.Fatalf("handler's line not logged; log:\n%s", buf.String())
			}
			if kv["method"] != tt.method {
				t.Errorf("method = %v, want %q", kv["method"], tt.method)
			}
			got, ok := kv["volumeID"]
			switch {
			case tt.volumeID == "" && ok:
				t.Errorf("volumeID = %v, want none", got)
			case tt.volumeID != "" && got != tt.volumeID:
				t.Errorf("volumeID = %v, want %q", got, tt.volumeID)
			}
		})
	}
}

func kvMap(kvs []any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kvs); i += 2 {
		if k, ok := kvs[i].(string); ok {
			m[k] = kvs[i+1]
		}
	}
	return m
}
