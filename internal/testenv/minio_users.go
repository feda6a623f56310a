//go:build linux

package testenv

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
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

// AssumeRole returns temporary credentials of a user, session token
// included, from MinIO's STS API (AssumeRole, signed with the user's
// keys); they carry the user's policy.
func (m *MinIO) AssumeRole(t testing.TB, accessKey, secretKey string) (tmpAccessKey, tmpSecretKey, sessionToken string) {
	t.Helper()
	body := url.Values{"Action": {"AssumeRole"}, "Version": {"2011-06-15"}, "DurationSeconds": {"3600"}}.Encode()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, m.Endpoint+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey}
	if err := v4.NewSigner().SignHTTP(t.Context(), creds, req, hex.EncodeToString(sum[:]), "sts", minioRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("testenv: STS AssumeRole: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("testenv: STS AssumeRole: %s: %v\n%s", resp.Status, err, raw)
	}
	var out struct {
		Credentials struct {
			AccessKeyID     string `xml:"AccessKeyId"`
			SecretAccessKey string `xml:"SecretAccessKey"`
			SessionToken    string `xml:"SessionToken"`
		} `xml:"AssumeRoleResult>Credentials"`
	}
	if err := xml.Unmarshal(raw, &out); err != nil || out.Credentials.SessionToken == "" {
		t.Fatalf("testenv: STS AssumeRole: unreadable answer (%v)", err)
	}
	return out.Credentials.AccessKeyID, out.Credentials.SecretAccessKey, out.Credentials.SessionToken
}
