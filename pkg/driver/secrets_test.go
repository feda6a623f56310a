package driver

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// TestParseSecrets: what kubelet passes from the StorageClass's secret
// becomes credentials, nothing becomes the node's chain, and a bad secret
// is InvalidArgument naming the key and never a value.
func TestParseSecrets(t *testing.T) {
	const ak, sk, tok = "AKIDSECRETVALUE1", "SK-secret-value-2", "TOKEN-secret-value-3"
	cases := []struct {
		name  string
		in    map[string]string
		field string // "" for success
	}{
		{"none: the node's chain", nil, ""},
		{"key and secret", map[string]string{SecretAccessKeyID: ak, SecretSecretAccessKey: sk}, ""},
		{"with a session token", map[string]string{SecretAccessKeyID: ak, SecretSecretAccessKey: sk, SecretSessionToken: tok}, ""},
		{"no secret key", map[string]string{SecretAccessKeyID: ak, SecretSessionToken: tok}, "secrets.AWS_SECRET_ACCESS_KEY"},
		{"no key ID", map[string]string{SecretSecretAccessKey: sk}, "secrets.AWS_ACCESS_KEY_ID"},
		{"empty key ID", map[string]string{SecretAccessKeyID: "", SecretSecretAccessKey: sk}, "secrets.AWS_ACCESS_KEY_ID"},
		{"a misspelt key", map[string]string{SecretAccessKeyID: ak, "AWS_SECRET_KEY": sk}, "secrets.AWS_SECRET_KEY"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			creds, err := parseSecrets("secrets", tc.in)
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				if (creds == nil) != (len(tc.in) == 0) {
					t.Fatalf("credentials %v for %d keys", creds, len(tc.in))
				}
				return
			}
			var fe *release.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || status.Code(toStatus(err)) != codes.InvalidArgument {
				t.Fatalf("err = %v, want InvalidArgument naming %s", err, tc.field)
			}
			for _, v := range []string{ak, sk, tok} {
				if strings.Contains(err.Error(), v) {
					t.Errorf("the error shows a secret value: %v", err)
				}
			}
		})
	}
	a, _ := parseSecrets("secrets", map[string]string{SecretAccessKeyID: ak, SecretSecretAccessKey: sk})
	b, _ := source.NewCredentials(ak, sk, "")
	if a.ID() != b.ID() {
		t.Error("the same secret must give the same credentials ID")
	}
}
