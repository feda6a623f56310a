package httpapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/manager/auth"
	"github.com/hydra-csi/hydra/pkg/release"
)

// DefaultDesiredWait is a long-poll's wait when the node gives none.
const DefaultDesiredWait = 60 * time.Second

func (s *Server) listChannels(r *http.Request, _ auth.Principal) (int, any, error) {
	chans, err := s.m.ListChannels(r.Context())
	if chans == nil {
		chans = []release.Channel{}
	}
	return http.StatusOK, api.ChannelList{Channels: chans}, err
}

func (s *Server) createChannel(r *http.Request, p auth.Principal) (int, any, error) {
	var req api.CreateChannelRequest
	if err := decode(r, s.opts.MaxBody, &req); err != nil {
		return 0, nil, err
	}
	auditFrom(r).setChannel(req.Name)
	// The channel's name is in the body, so the scope check happens here.
	if !p.Allowed(auth.ChangeChannel, req.Name) {
		return 0, nil, forbidden(p, auth.ChangeChannel, req.Name)
	}
	ch, err := s.m.CreateChannel(r.Context(), req)
	return http.StatusCreated, ch, err
}

func (s *Server) getChannel(r *http.Request, _ auth.Principal) (int, any, error) {
	d, err := s.m.GetChannel(r.Context(), r.PathValue("channel"))
	return http.StatusOK, d, err
}

func (s *Server) deleteChannel(r *http.Request, _ auth.Principal) (int, any, error) {
	return http.StatusNoContent, nil, s.m.DeleteChannel(r.Context(), r.PathValue("channel"))
}

func (s *Server) channelStatus(r *http.Request, _ auth.Principal) (int, any, error) {
	name := r.PathValue("channel")
	if err := release.ValidateChannelName(name); err != nil {
		return 0, nil, err
	}
	st, err := s.m.ChannelStatus(r.Context(), name)
	return http.StatusOK, st, err
}

func (s *Server) listReleases(r *http.Request, _ auth.Principal) (int, any, error) {
	rels, err := s.m.ListReleases(r.Context(), r.PathValue("channel"))
	if rels == nil {
		rels = []release.Summary{}
	}
	return http.StatusOK, api.ReleaseList{Releases: rels}, err
}

func (s *Server) publish(r *http.Request, p auth.Principal) (int, any, error) {
	// The turn covers reading the body too: that is where memory goes.
	endTurn, err := s.large.acquire(r)
	if err != nil {
		return 0, nil, err
	}
	defer endTurn()
	var req api.PublishRequest
	if err := decode(r, s.opts.MaxPublishBody, &req); err != nil {
		return 0, nil, err
	}
	auditFrom(r).setVersion(req.Version)
	resp, err := s.m.Publish(r.Context(), r.PathValue("channel"), p.ID, req)
	return http.StatusCreated, resp, err
}

func (s *Server) getRelease(r *http.Request, _ auth.Principal) (int, any, error) {
	rel, err := s.m.GetRelease(r.Context(), r.PathValue("channel"), r.PathValue("version"))
	return http.StatusOK, rel, err
}

func (s *Server) getManifest(r *http.Request, _ auth.Principal) (int, any, error) {
	rel, err := s.m.GetManifest(r.Context(), r.PathValue("channel"), r.PathValue("version"))
	return http.StatusOK, rel, err
}

func (s *Server) deleteRelease(r *http.Request, _ auth.Principal) (int, any, error) {
	auditFrom(r).setVersion(r.PathValue("version"))
	return http.StatusNoContent, nil, s.m.DeleteRelease(r.Context(), r.PathValue("channel"), r.PathValue("version"))
}

func (s *Server) history(r *http.Request, _ auth.Principal) (int, any, error) {
	moves, err := s.m.History(r.Context(), r.PathValue("channel"))
	if moves == nil {
		moves = []release.HeadMove{}
	}
	return http.StatusOK, api.History{Moves: moves}, err
}

// patchConfig applies a JSON merge patch to the channel's config; the
// audit line carries each setting's old and new value.
func (s *Server) patchConfig(r *http.Request, _ auth.Principal) (int, any, error) {
	var patch json.RawMessage
	if err := decode(r, s.opts.MaxBody, &patch); err != nil {
		return 0, nil, err
	}
	ch, changes, err := s.m.PatchConfig(r.Context(), r.PathValue("channel"), patch)
	if changes == nil {
		changes = []api.ConfigChange{}
	}
	auditFrom(r).setChanges(changes)
	return http.StatusOK, api.ConfigResponse{Channel: ch, Changes: changes}, err
}

func (s *Server) setHead(r *http.Request, _ auth.Principal) (int, any, error) {
	var req api.VersionRequest
	if err := decode(r, s.opts.MaxBody, &req); err != nil {
		return 0, nil, err
	}
	auditFrom(r).setVersion(req.Version)
	ch, err := s.m.SetHead(r.Context(), r.PathValue("channel"), req.Version)
	return http.StatusOK, ch, err
}

func (s *Server) rollback(r *http.Request, _ auth.Principal) (int, any, error) {
	var req api.RollbackRequest
	if err := decode(r, s.opts.MaxBody, &req); err != nil {
		return 0, nil, err
	}
	auditFrom(r).setVersion(req.To)
	ch, err := s.m.Rollback(r.Context(), r.PathValue("channel"), req.To)
	auditFrom(r).setVersion(ch.Head) // the version rolled back to
	return http.StatusOK, ch, err
}

func (s *Server) pin(r *http.Request, _ auth.Principal) (int, any, error) {
	var req api.VersionRequest
	if err := decode(r, s.opts.MaxBody, &req); err != nil {
		return 0, nil, err
	}
	auditFrom(r).setVersion(req.Version)
	ch, err := s.m.Pin(r.Context(), r.PathValue("channel"), req.Version)
	return http.StatusOK, ch, err
}

func (s *Server) unpin(r *http.Request, _ auth.Principal) (int, any, error) {
	ch, err := s.m.Unpin(r.Context(), r.PathValue("channel"))
	auditFrom(r).setVersion(ch.Head) // the head it moved to
	return http.StatusOK, ch, err
}

func (s *Server) pause(r *http.Request, _ auth.Principal) (int, any, error) {
	var req api.PauseRequest
	if err := decode(r, s.opts.MaxBody, &req); err != nil {
		return 0, nil, err
	}
	// The reason is shown on operators' terminals: refused at the edge
	// when it carries control characters.
	if err := release.ValidatePauseReason(req.Reason); err != nil {
		return 0, nil, err
	}
	ch, err := s.m.Pause(r.Context(), r.PathValue("channel"), req.Reason)
	return http.StatusOK, ch, err
}

func (s *Server) resume(r *http.Request, _ auth.Principal) (int, any, error) {
	ch, err := s.m.Resume(r.Context(), r.PathValue("channel"))
	return http.StatusOK, ch, err
}

func (s *Server) listNodes(r *http.Request, _ auth.Principal) (int, any, error) {
	nodes, err := s.m.ListNodes(r.Context())
	if nodes == nil {
		nodes = []api.NodeReport{}
	}
	return http.StatusOK, api.NodeList{Nodes: nodes}, err
}

func (s *Server) forgetNode(r *http.Request, _ auth.Principal) (int, any, error) {
	return http.StatusNoContent, nil, s.m.ForgetNode(r.Context(), r.PathValue("node"))
}

// desired is the node long-poll: GET /v1/nodes/{node}/desired?index=N&wait=60s.
func (s *Server) desired(r *http.Request, _ auth.Principal) (int, any, error) {
	index, err := queryUint(r, "index")
	if err != nil {
		return 0, nil, err
	}
	wait, err := queryDuration(r, "wait", DefaultDesiredWait)
	if err != nil {
		return 0, nil, err
	}
	d, err := s.m.Desired(r.Context(), r.PathValue("node"), index, wait)
	return http.StatusOK, d, err
}

func (s *Server) reportStatus(r *http.Request, _ auth.Principal) (int, any, error) {
	var st release.NodeStatus
	if err := decode(r, s.opts.MaxReportBody, &st); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, s.m.ReportStatus(r.Context(), r.PathValue("node"), st)
}
