package driver

import (
	"errors"
	"testing"

	"github.com/hydra-csi/hydra/pkg/release"
)

func TestManagerOrigin(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://mgr:8080", "http://mgr:8080"},
		{"http://MGR:8080/", "http://mgr:8080"},
		{"mgr:8080", "http://mgr:8080"},
		{"http://mgr", "http://mgr:80"},
		{"https://mgr", "https://mgr:443"},
		{"https://mgr:443/hydra/", "https://mgr:443/hydra"},
		{"http://[::1]:8080", "http://[::1]:8080"},
	} {
		got, err := ManagerOrigin(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ManagerOrigin(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"ftp://mgr", "http://", "http://u:p@mgr:8080", "http://mgr:8080/?x=1", "http://mgr#f", "http://%zz"} {
		if got, err := ManagerOrigin(bad); err == nil {
			t.Errorf("ManagerOrigin(%q) = %q, want an error", bad, got)
		}
	}
}

// TestManagersCheck: a `manager` attribute passes only for --manager and
// --allowed-manager, in any spelling of the same origin; the error names
// the field.
func TestManagersCheck(t *testing.T) {
	m, err := newManagers("http://hydra-manager.hydra-system:8080", []string{"https://other.example:8443"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{"", "http://hydra-manager.hydra-system:8080", "http://HYDRA-manager.hydra-system:8080/",
		"hydra-manager.hydra-system:8080", "https://other.example:8443"} {
		if err := m.check("volume_context.manager", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{
		"http://attacker.example:8080",                // elsewhere
		"https://hydra-manager.hydra-system:8080",     // another scheme
		"http://hydra-manager.hydra-system:8081",      // another port
		"http://hydra-manager.hydra-system",           // port 80
		"http://hydra-manager.hydra-system:8080/evil", // another path
		"http://other.example:8443",                   // allowed only as https
		"http://x@hydra-manager.hydra-system:8080",    // user info
	} {
		var fe *release.FieldError
		if err := m.check("volume_context.manager", bad); !errors.As(err, &fe) || fe.Field != "volume_context.manager" {
			t.Errorf("%q: %v, want a FieldError naming volume_context.manager", bad, err)
		}
	}
	if !m.isDefault("") || !m.isDefault("hydra-manager.hydra-system:8080") || m.isDefault("https://other.example:8443") {
		t.Error("isDefault")
	}
}
