package httpapi

// RouteInfo is a /v1 route as the tests see it.
type RouteInfo struct {
	Pattern  string
	Mutating bool
}

// RouteTable lists the routes the server registers, from the same table
// (no handler is called: method values on a nil *Server are not used).
func RouteTable() []RouteInfo {
	var s *Server
	var out []RouteInfo
	for _, rt := range s.apiRoutes() {
		out = append(out, RouteInfo{Pattern: rt.pattern, Mutating: rt.mutating()})
	}
	return out
}
