package driver

import (
	"context"
	"fmt"

	"github.com/hydra-csi/hydra/pkg/source"
)

// access is what a published volume reads with: the ID of its S3
// credentials and, when this process knows them, the credentials.
type access struct {
	id    string
	creds *source.Credentials
	known bool
}

// publishAccess settles the credentials of a publish: the node-publish
// secret when the request has one, else those that staged the volume. The
// staged release must be readable with them: proved now when they are
// known (from memory once proved; the release may also have left the
// store and come back, fetched by others), trusted from the staging
// record when a restart lost them (the stage proved them on that release).
func (d *Driver) publishAccess(ctx context.Context, rec stageRecord, creds *source.Credentials) (access, error) {
	acc := access{id: creds.ID(), creds: creds, known: true}
	if creds == nil {
		acc.id = rec.credentials()
		acc.creds, acc.known = d.opts.Keyring.Get(acc.id)
	}
	if !acc.known {
		return acc, nil
	}
	return acc, d.authorize(ctx, rec.Attrs, rec.Version, acc.creds)
}

// unknown is the error of a volume whose credentials this process lost.
func (a access) unknown(volumeID string) error {
	return fmt.Errorf("driver: volume %s: %w: its release must be downloaded again, and its S3 credentials (%s) are not known to this plugin since it restarted; they come with the next NodeStageVolume or NodePublishVolume that carries the volume's secret",
		volumeID, errPrecondition, a.id)
}
