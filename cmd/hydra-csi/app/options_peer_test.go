package app

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/hydra-csi/hydra/pkg/cache"
)

// TestPeerFlags: the peer flags are checked at start, naming the flag,
// and the part size follows peer distribution unless given.
func TestPeerFlags(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		wantErr  string
		wantPart int64
	}{
		{nil, "", cache.DefaultPartSize},
		{[]string{"--peer-listen=10.0.0.1:7470"}, "", PeerPartSize},
		{[]string{"--peer-listen=:7470", "--peer-advertise=10.0.0.1:7470"}, "", PeerPartSize},
		{[]string{"--peer-listen=:7470", "--peer-advertise=10.0.0.1:7470", "--part-size=8Mi"}, "", 8 << 20},
		{[]string{"--part-size=32Mi"}, "", 32 << 20},
		{[]string{"--peer-listen=:7470"}, "--peer-advertise", 0},
		{[]string{"--peer-listen=0.0.0.0:7470"}, "--peer-advertise", 0},
		{[]string{"--peer-advertise=10.0.0.1:7470"}, "--peer-advertise needs --peer-listen", 0},
		{[]string{"--peer-listen=nohostport"}, "--peer-listen", 0},
		{[]string{"--peer-listen=:7470", "--peer-advertise=10.0.0.1"}, "--peer-advertise", 0},
		{[]string{"--peer-listen=:7470", "--peer-advertise=10.0.0.1:7470", "--peer-upload-rate=fast"}, "--peer-upload-rate", 0},
		{[]string{"--peer-listen=:7470", "--peer-advertise=10.0.0.1:7470", "--peer-upload-streams=0"}, "--peer-upload-streams", 0},
		{[]string{"--peer-listen=:7470", "--peer-advertise=10.0.0.1:7470", "--peer-min-rate=-1"}, "--peer-min-rate", 0},
		{[]string{"--part-size=512Ki"}, "--part-size", 0},
		{[]string{"--part-size=1Gi"}, "--part-size", 0},
		{[]string{"--zone=bad\x1bzone"}, "--zone", 0},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			o := DefaultOptions()
			o.NodeID, o.Manager = "node-a", "http://manager:8080"
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			o.AddFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := o.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate = %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Validate = %v, want an error naming %s", err, tc.wantErr)
			case tc.wantErr == "" && o.partBytes != tc.wantPart:
				t.Errorf("part size %d, want %d", o.partBytes, tc.wantPart)
			}
		})
	}
}
