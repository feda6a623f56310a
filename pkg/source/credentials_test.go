package source_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// TestCredentialsNeverPrint: however credentials (or a struct holding
// them) are formatted or marshalled, no key appears; the ID tells
// different credentials apart and the same ones together.
func TestCredentialsNeverPrint(t *testing.T) {
	const ak, sk, tok = "AKIAEXAMPLEKEYID0001", "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY", "FwoGZXIvYXdzEXAMPLETOKEN"
	c, err := source.NewCredentials(ak, sk, tok)
	if err != nil {
		t.Fatal(err)
	}
	holder := struct {
		Volume string
		Creds  *source.Credentials
		inner  *source.Credentials
		value  source.Credentials
	}{"v", c, c, *c}
	raw, err := json.Marshal(holder)
	if err != nil {
		t.Fatal(err)
	}
	shown := []string{
		fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s %q", c, c, c, c, c),
		fmt.Sprintf("%v %+v %#v", holder, holder, holder), fmt.Sprintf("%+v", *c), string(raw),
		fmt.Errorf("wrapped %v: %w", c, errors.New("x")).Error(),
	}
	for _, s := range shown {
		for _, secret := range []string{ak, sk, tok} {
			if strings.Contains(s, secret) {
				t.Errorf("a key shows in %q", s)
			}
		}
	}
	if !strings.HasPrefix(c.ID(), "s3-") || len(c.ID()) != 3+32 || !strings.Contains(fmt.Sprint(c), c.ID()) {
		t.Errorf("ID %q, String %q", c.ID(), c)
	}
	same, _ := source.NewCredentials(ak, sk, tok)
	noToken, _ := source.NewCredentials(ak, sk, "")
	if same.ID() != c.ID() || noToken.ID() == c.ID() {
		t.Error("the ID must be a function of all three values")
	}
	// Length-prefixed: moving characters between fields changes the ID.
	a, _ := source.NewCredentials("ab", "c", "")
	b, _ := source.NewCredentials("a", "bc", "")
	if a.ID() == b.ID() {
		t.Error("IDs collide across field boundaries")
	}
	var node *source.Credentials
	if node.ID() != source.NodeCredentials {
		t.Errorf("nil credentials ID %q, want %q", node.ID(), source.NodeCredentials)
	}
	if _, err := source.NewCredentials(ak, "", ""); err == nil {
		t.Error("a missing secret key must be refused")
	}
}

func TestKeyring(t *testing.T) {
	k := source.NewKeyring()
	c, _ := source.NewCredentials("AKID", "secret", "")
	if _, ok := k.Get(c.ID()); ok {
		t.Fatal("unknown credentials found")
	}
	k.Add(c)
	k.Add(nil)
	if got, ok := k.Get(c.ID()); !ok || got != c {
		t.Fatalf("Get = %v, %v", got, ok)
	}
	for _, id := range []string{"", source.NodeCredentials} {
		if got, ok := k.Get(id); !ok || got != nil {
			t.Errorf("Get(%q) = %v, %v; want the node's chain (nil, true)", id, got, ok)
		}
	}
}

// TestReaderWithCredentials: a mux signs with a volume's credentials
// instead of the environment's, and a refusal is ErrDenied naming the
// object and no key.
func TestReaderWithCredentials(t *testing.T) {
	e := startFetchEnv(t)
	mux := source.NewReaderMux(source.FetchOptions{Endpoint: e.m.Endpoint})
	readerAK, readerSK := e.m.AddUser(t, fetchBucket+"/ds/")
	noneAK, noneSK := e.m.AddUser(t)
	reader, err := source.NewCredentials(readerAK, readerSK, "")
	if err != nil {
		t.Fatal(err)
	}
	none, err := source.NewCredentials(noneAK, noneSK, "")
	if err != nil {
		t.Fatal(err)
	}
	f := e.file("small.txt")
	var buf bytes.Buffer
	if err := mux.WithCredentials(reader).ReadRange(t.Context(), e.src, f, 0, f.Size, &buf); err != nil || buf.String() != "ten bytes!" {
		t.Fatalf("with the reader's credentials: %q, %v", buf.String(), err)
	}
	if mux.WithCredentials(reader) != mux.WithCredentials(reader) || mux.WithCredentials(nil) != source.Reader(mux) {
		t.Error("WithCredentials must keep one reader per credentials, and nil must be the mux itself")
	}
	err = mux.WithCredentials(none).ReadRange(t.Context(), e.src, f, 0, 1, &bytes.Buffer{})
	if !errors.Is(err, source.ErrDenied) || !strings.Contains(err.Error(), "s3://data/ds/small.txt") {
		t.Fatalf("with credentials that may read nothing: %v, want ErrDenied naming the object", err)
	}
	for _, secret := range []string{noneAK, noneSK} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error shows a key: %v", err)
		}
	}
	// The environment's (root) credentials still read through the mux.
	if err := mux.ReadRange(t.Context(), e.src, f, 0, 1, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	other := s3URI(t, "s3://"+fetchBucket+"/other/")
	e.m.Put(t, fetchBucket, "other/x", []byte("x"))
	x := release.File{Path: "x", Size: 1, ETag: md5ETag([]byte("x"))}
	if err := mux.WithCredentials(reader).ReadRange(t.Context(), other, x, 0, 1, &bytes.Buffer{}); !errors.Is(err, source.ErrDenied) {
		t.Fatalf("outside the user's prefix: %v, want ErrDenied", err)
	}
}
