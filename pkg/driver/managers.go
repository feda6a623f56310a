package driver

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/hydra-csi/hydra/pkg/client"
)

// ManagerOrigin is the form in which manager URLs are compared: scheme,
// lower-case host, explicit port and path without a trailing slash
// ("http://mgr.hydra-system:8080"). A URL without a scheme is http://, as
// the client reads it. User info, a query or a fragment are refused: none
// has a place in a manager URL, and user info would be a second credential.
func ManagerOrigin(raw string) (string, error) {
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", fmt.Errorf("not a URL: %w", err)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.Opaque != "":
		return "", errors.New("want http(s)://HOST[:PORT][/PATH]")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "", errors.New("must not carry user info, a query or a fragment")
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return u.Scheme + "://" + net.JoinHostPort(strings.ToLower(host), port) + strings.TrimRight(u.Path, "/"), nil
}

// managers is the allow-list of the `manager` attribute: the plugin's own
// --manager and each --allowed-manager. The plugin sends its bearer token
// to every manager it talks to, so a volume (an inline one in any pod
// spec, say) must not be able to point it anywhere else.
type managers struct {
	def     string   // the origin of --manager
	allowed []string // origins of --allowed-manager
}

func newManagers(def string, allowed []string) (managers, error) {
	m := managers{}
	var err error
	if def != "" {
		if m.def, err = ManagerOrigin(def); err != nil {
			return m, fmt.Errorf("driver: manager %q: %w", def, err)
		}
	}
	for _, a := range allowed {
		o, err := ManagerOrigin(a)
		if err != nil {
			return m, fmt.Errorf("driver: allowed manager %q: %w", a, err)
		}
		m.allowed = append(m.allowed, o)
	}
	return m, nil
}

// check refuses a `manager` attribute outside the allow-list; field names
// it ("parameters.manager", "volume_context.manager"). Empty is the
// default manager.
func (m managers) check(field, raw string) error {
	if raw == "" {
		return nil
	}
	o, err := ManagerOrigin(raw)
	if err != nil {
		return invalid(field, raw, "%v", err)
	}
	if o != m.def && !slices.Contains(m.allowed, o) {
		return invalid(field, raw, "is neither this plugin's --manager nor one of its --allowed-manager: the plugin sends its token only to those")
	}
	return nil
}

// isDefault reports a `manager` attribute that names the default manager.
func (m managers) isDefault(raw string) bool {
	o, err := ManagerOrigin(raw)
	return raw == "" || (err == nil && o == m.def)
}

// clientFor returns the client of the manager a volume names, or the
// default one. It checks the allow-list again: records written before an
// upgrade (a staged volume) come back here without a new request.
func (d *Driver) clientFor(managerURL string) (*client.Client, error) {
	if d.managers.isDefault(managerURL) {
		return d.opts.Client, nil
	}
	if err := d.managers.check("volume_context."+AttrManager, managerURL); err != nil {
		return nil, err
	}
	if d.opts.NewClient == nil {
		return nil, invalid("volume_context."+AttrManager, managerURL, "this plugin only talks to its --manager")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.clients[managerURL]; ok {
		return c, nil
	}
	c, err := d.opts.NewClient(managerURL)
	if err != nil {
		return nil, fmt.Errorf("driver: manager %s: %w", managerURL, err)
	}
	d.clients[managerURL] = c
	return c, nil
}
