package driver

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// failingPVCs answers every Get with err: the narrow seam for the API's
// answers that a real kube-apiserver does not give on demand (429, 503,
// 403). tests/csi covers the rest against a real one.
type failingPVCs struct {
	corev1client.PersistentVolumeClaimInterface // nil: only Get is called
	err                                         error
}

func (f failingPVCs) PersistentVolumeClaims(string) corev1client.PersistentVolumeClaimInterface {
	return f
}

func (f failingPVCs) Get(context.Context, string, metav1.GetOptions) (*corev1.PersistentVolumeClaim, error) {
	return nil, f.err
}

// TestPVCErrors maps each answer of the Kubernetes API to its code, and
// checks that the message names the PVC.
func TestPVCErrors(t *testing.T) {
	pvcs := schema.GroupResource{Resource: "persistentvolumeclaims"}
	refused := &url.Error{Op: "Get", URL: "https://127.0.0.1:6443/api/v1/namespaces/ns/persistentvolumeclaims/data",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	for _, tc := range []struct {
		name  string
		err   error
		code  codes.Code
		words []string
	}{
		{"not found", apierrors.NewNotFound(pvcs, "data"), codes.NotFound, nil},
		{"throttled", apierrors.NewTooManyRequests("slow down", 1), codes.Unavailable, nil},
		{"503", apierrors.NewServiceUnavailable("etcd down"), codes.Unavailable, []string{"etcd down"}},
		{"server timeout", apierrors.NewServerTimeout(pvcs, "get", 1), codes.Unavailable, nil},
		{"gateway timeout", apierrors.NewTimeoutError("slow", 1), codes.Unavailable, nil},
		{"500", apierrors.NewInternalError(errors.New("boom")), codes.Unavailable, []string{"boom"}},
		{"connection refused", refused, codes.Unavailable, []string{"connection refused"}},
		{"RBAC forbids", apierrors.NewForbidden(pvcs, "data", errors.New("no")), codes.Internal, []string{"get on persistentvolumeclaims"}},
		{"deadline", &url.Error{Op: "Get", URL: "u", Err: context.DeadlineExceeded}, codes.DeadlineExceeded, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Driver{opts: Options{PVCs: failingPVCs{err: tc.err}}}
			_, err := d.channelFromPVC(context.Background(), map[string]string{paramPVCName: "data", paramPVCNs: "ns"}, volumeAttrs{})
			st := status.Convert(toStatus(err))
			if st.Code() != tc.code {
				t.Fatalf("code %v (%v), want %v", st.Code(), err, tc.code)
			}
			for _, w := range append(tc.words, "ns/data") {
				if !strings.Contains(st.Message(), w) {
					t.Errorf("message %q does not name %q", st.Message(), w)
				}
			}
		})
	}
}
