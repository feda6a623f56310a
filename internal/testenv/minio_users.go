//go:build linux

package testenv

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// AddUser creates a MinIO user (with the mc client `make tools` builds)
// that may read only the objects under the given "bucket/prefix"
// locations (s3:GetObject on each prefix's keys, s3:ListBucket on its
// bucket); with none, the user may read nothing. It returns the user's
// access key and secret key, fresh random values.
func (m *MinIO) AddUser(t testing.TB, readable ...string) (accessKey, secretKey string) {
	t.Helper()
	accessKey, secretKey = "user"+strings.ToLower(rand.Text()[:12]), rand.Text()
	dir := t.TempDir()
	m.mc(t, dir, "alias", "set", "hydra", m.Endpoint, m.AccessKey, m.SecretKey)
	m.mc(t, dir, "admin", "user", "add", "hydra", accessKey, secretKey)
	if len(readable) == 0 {
		return accessKey, secretKey
	}
	var statements []map[string]any
	for _, loc := range readable {
		bucket, prefix, _ := strings.Cut(loc, "/")
		statements = append(statements,
			map[string]any{"Effect": "Allow", "Action": []string{"s3:GetObject"},
				"Resource": []string{"arn:aws:s3:::" + bucket + "/" + prefix + "*"}},
			map[string]any{"Effect": "Allow", "Action": []string{"s3:ListBucket"},
				"Resource": []string{"arn:aws:s3:::" + bucket}})
	}
	raw, err := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": statements})
	if err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(policy, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	name := "read-" + accessKey
	m.mc(t, dir, "admin", "policy", "create", "hydra", name, policy)
	m.mc(t, dir, "admin", "policy", "attach", "hydra", name, "--user", accessKey)
	return accessKey, secretKey
}

// mc runs the MinIO client with its configuration in dir.
func (m *MinIO) mc(t testing.TB, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(Tool(t, "mc"), append([]string{"--config-dir", dir, "--quiet", "--no-color"}, args...)...)
	cmd.Env = append(os.Environ(), "MC_DISABLE_PAGER=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		// The output may hold keys: the test's own, made up for it.
		t.Fatalf("testenv: mc %s: %v\n%s", args[0]+" "+args[1], err, out)
	}
}
