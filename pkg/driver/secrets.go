package driver

import (
	"slices"
	"strings"

	"github.com/hydra-csi/hydra/pkg/source"
)

// The keys of a volume's S3 credentials in the Secret that the
// StorageClass names as its node-stage or node-publish secret; kubelet
// passes the Secret's data in NodeStageVolumeRequest.secrets and
// NodePublishVolumeRequest.secrets. They are the AWS environment's names.
const (
	SecretAccessKeyID     = "AWS_ACCESS_KEY_ID"     //nolint:gosec // G101: a key's name, not a credential
	SecretSecretAccessKey = "AWS_SECRET_ACCESS_KEY" //nolint:gosec // G101: a key's name, not a credential
	SecretSessionToken    = "AWS_SESSION_TOKEN"     //nolint:gosec // G101: a key's name, not a credential
)

var knownSecrets = []string{SecretAccessKeyID, SecretSecretAccessKey, SecretSessionToken}

// parseSecrets returns the S3 credentials in a request's secrets, or nil
// (the node's own credentials) when there are none. Errors name the key,
// never a value: the values are secret, and so is which of them is wrong.
func parseSecrets(field string, m map[string]string) (*source.Credentials, error) {
	if len(m) == 0 {
		return nil, nil
	}
	for k := range m {
		if !slices.Contains(knownSecrets, k) {
			return nil, invalid(field+"."+k, "", "unknown key; the known ones are %s", strings.Join(knownSecrets, ", "))
		}
	}
	for _, k := range []string{SecretAccessKeyID, SecretSecretAccessKey} {
		if m[k] == "" {
			return nil, invalid(field+"."+k, "", "is required in a volume's S3 secret (with %s and %s; %s is optional)",
				SecretAccessKeyID, SecretSecretAccessKey, SecretSessionToken)
		}
	}
	return source.NewCredentials(m[SecretAccessKeyID], m[SecretSecretAccessKey], m[SecretSessionToken])
}
