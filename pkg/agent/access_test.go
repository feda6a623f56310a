package agent

import (
	"context"
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// TestFlipsNeedTheViewsCredentials: the agent flips a view to a release
// only once the credentials of the view's volume are proved to read it:
// alice (who reads the channel's every release) flips, bob (who reads
// only v1) and a view whose credentials this process never saw keep v1;
// a view on the node's credentials flips. The release is on the node in
// every case, downloaded with alice's credentials.
func TestFlipsNeedTheViewsCredentials(t *testing.T) {
	m := testenv.StartMinIO(t)
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	m.CreateBucket(t, "data")
	rels := map[string]release.Release{}
	for _, v := range []string{"v1", "v2"} {
		m.Put(t, "data", "sec/"+v+"/file.bin", []byte("release "+v))
		lister, err := source.NewS3(t.Context(), source.Options{})
		if err != nil {
			t.Fatal(err)
		}
		src, _ := release.ParseSource("s3://data/sec/" + v + "/")
		man, err := lister.List(t.Context(), src)
		if err != nil {
			t.Fatal(err)
		}
		rels[v] = release.Release{Channel: "sec", Version: v, Seq: uint64(len(rels) + 1),
			Datasets: []release.Dataset{{Name: "d", Source: src.String(), Manifest: man}}}
	}
	creds := func(readable ...string) *source.Credentials {
		ak, sk := m.AddUser(t, readable...)
		c, err := source.NewCredentials(ak, sk, "")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	alice, bob, stranger := creds("data/sec/"), creds("data/sec/v1/"), creds("data/sec/")

	c, err := cache.New(cache.Options{Root: t.TempDir(), Reader: source.NewReaderMux(source.FetchOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	views := cache.NewViews(c.Layout())
	keys := source.NewKeyring()
	keys.Add(alice)
	keys.Add(bob)
	cl, err := client.New("http://127.0.0.1:1") // flips need no manager
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Node: "node-a", Client: cl, Cache: c, Views: views, Keyring: keys})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, v := range []string{"v1", "v2"} {
		if err := c.EnsureFor(ctx, rels[v], alice); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Authorize(ctx, rels["v1"], bob); err != nil {
		t.Fatal(err)
	}
	pods := map[string]*source.Credentials{"pod-alice": alice, "pod-bob": bob, "pod-stranger": stranger, "pod-node": nil}
	var d release.Desired
	for pod, cr := range pods {
		if _, err := views.Create(cache.ViewRecord{VolumeID: "vol-" + pod, PodUID: pod, Channel: "sec", Credentials: cr.ID()}, "v1"); err != nil {
			t.Fatal(err)
		}
		d.Views = append(d.Views, release.DesiredView{VolumeID: "vol-" + pod, PodUID: pod, Channel: "sec", Version: "v2"})
	}
	list, err := views.List()
	if err != nil {
		t.Fatal(err)
	}
	a.applyFlips(ctx, release.MediumDisk, list, d)

	want := map[string]string{"pod-alice": "v2", "pod-bob": "v1", "pod-stranger": "v1", "pod-node": "v2"}
	for pod, rel := range want {
		v, err := views.Get("vol-"+pod, pod)
		if err != nil {
			t.Fatal(err)
		}
		if v.Current != rel {
			t.Errorf("%s serves %s, want %s", pod, v.Current, rel)
		}
	}
}

// TestDownloadCredentials: a background download uses the node's
// credentials when a view of the channel reads with them, else the first
// known credentials of the channel's views.
func TestDownloadCredentials(t *testing.T) {
	alice, _ := source.NewCredentials("alice", "a-secret", "")
	bob, _ := source.NewCredentials("bob", "b-secret", "")
	lost, _ := source.NewCredentials("lost", "l-secret", "")
	keys := source.NewKeyring()
	keys.Add(alice)
	keys.Add(bob)
	a := &Agent{opts: Options{Keyring: keys}}
	view := func(ch string, c *source.Credentials) cache.ViewInfo {
		return cache.ViewInfo{ViewRecord: cache.ViewRecord{Channel: ch, Credentials: c.ID()}}
	}
	for _, tc := range []struct {
		name  string
		views []cache.ViewInfo
		want  *source.Credentials
	}{
		{"no view", nil, nil},
		{"a view on the node's", []cache.ViewInfo{view("ch", alice), view("ch", nil)}, nil},
		{"old records say nothing", []cache.ViewInfo{view("ch", alice), {ViewRecord: cache.ViewRecord{Channel: "ch"}}}, nil},
		{"volumes' only", []cache.ViewInfo{view("ch", lost), view("ch", bob), view("ch", alice)}, bob},
		{"other channels do not count", []cache.ViewInfo{view("other", nil), view("ch", alice)}, alice},
		{"only lost credentials", []cache.ViewInfo{view("ch", lost)}, nil},
	} {
		if got := a.downloadCredentials("ch", tc.views); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
