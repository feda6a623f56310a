package httpapi

import (
	"context"
	"net/http"
	"strings"

	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/manager/auth"
)

// The audit trail: one line per request to a mutating route, on the klog
// logger named "audit", after the answer is written — who (the token's
// principal ID and role, which name the token by file line and a short
// hash, never by its value; "unauthenticated" when it had none that
// counts; the client certificate's name under mutual TLS), what (method,
// route, action), on which channel, release or node, and the status.
//
// Refusals and every channel change are logged at V(0). A node's accepted
// status report is logged at V(4) only: it is telemetry that every node
// sends every few seconds while it downloads (ReportInterval) and every
// minute when idle, which at V(0) would bury the changes people make.
type auditRecord struct {
	r      *http.Request
	rt     route
	status *statusRecorder

	principal, role, clientCert string
	channel, version, node      string
	// changes is a config patch's "setting: old -> new" list.
	changes string
}

type auditKey struct{}

// startAudit wraps the response to see its status and puts the record in
// the request's context, where the handler adds what only the body says
// (a new channel's name, a release).
func (s *Server) startAudit(w http.ResponseWriter, r *http.Request, rt route) (http.ResponseWriter, *http.Request, *auditRecord) {
	a := &auditRecord{rt: rt, status: &statusRecorder{ResponseWriter: w, status: http.StatusOK},
		principal: "unauthenticated", clientCert: clientCertName(r),
		channel: r.PathValue("channel"), version: r.PathValue("version"), node: r.PathValue("node")}
	a.r = r.WithContext(context.WithValue(r.Context(), auditKey{}, a))
	return a.status, a.r, a
}

// auditFrom returns the request's audit record, nil for a read.
func auditFrom(r *http.Request) *auditRecord {
	a, _ := r.Context().Value(auditKey{}).(*auditRecord)
	return a
}

func (a *auditRecord) setPrincipal(p auth.Principal) {
	if a != nil {
		a.principal, a.role = p.ID, string(p.Role)
	}
}

func (a *auditRecord) setChannel(name string) {
	if a != nil {
		a.channel = name
	}
}

func (a *auditRecord) setVersion(version string) {
	if a != nil && version != "" {
		a.version = version
	}
}

func (a *auditRecord) setChanges(changes []api.ConfigChange) {
	if a == nil {
		return
	}
	parts := make([]string, len(changes))
	for i, c := range changes {
		parts[i] = c.Setting + ": " + c.Old + " -> " + c.New
	}
	a.changes = strings.Join(parts, "; ")
}

// log writes the record's line.
func (a *auditRecord) log() {
	logger := klog.Background().WithName("audit")
	if a.rt.act == auth.Node && a.status.status/100 == 2 {
		logger = logger.V(4)
	}
	kv := []any{"principal", a.principal, "role", a.role, "method", a.r.Method, "route", a.rt.pattern,
		"action", a.rt.act.String(), "status", a.status.status, "remote", a.r.RemoteAddr}
	for _, f := range []struct{ key, value string }{
		// "release" is the audit line's key from before the glossary; it stays
		// (docs/design.md §11).
		{"channel", a.channel}, {"release", a.version}, {"node", a.node}, {"clientCert", a.clientCert}, {"changes", a.changes},
	} {
		if f.value != "" {
			kv = append(kv, f.key, f.value)
		}
	}
	logger.Info("mutation", kv...)
}

// clientCertName is the common name of the request's verified client
// certificate; empty without one.
func clientCertName(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return ""
	}
	return r.TLS.VerifiedChains[0][0].Subject.CommonName
}
