package proxy

import (
	"net/http"

	"github.com/elazarl/goproxy"

	"github.com/countersign/countersign/internal/h1"
	"github.com/countersign/countersign/internal/hostport"
)

// handlePlain serves plain-HTTP proxy requests (absolute-form, not CONNECT)
// through the same pipeline. It always returns a response, so goproxy's own
// transport is never used, and it always closes the connection afterwards:
// every head on a proxy connection has been checked by strictListener.
func (s *Server) handlePlain(req *http.Request, gctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
	sess, ok := s.authenticate(req)
	if !ok {
		return req, proxyAuthRequired(req)
	}
	id := newRequestID()
	if req.URL.Scheme != "http" {
		s.auditRefusal(sess, &exchange{session: sess, id: id, scheme: req.URL.Scheme}, http.StatusBadRequest, "a "+req.URL.Scheme+":// URL without CONNECT")
		return req, plainResponse(req, http.StatusBadRequest, "countersign: only http:// URLs can be proxied without CONNECT; use CONNECT for https.")
	}
	host, port, err := hostport.Split(req.URL.Host, 80)
	if err != nil {
		ex := &exchange{session: sess, id: id, scheme: "http"}
		s.auditRefusal(sess, ex, http.StatusBadRequest, "bad host in request URL")
		return req, plainResponse(req, http.StatusBadRequest, "countersign: the request URL's host is not valid; refused.")
	}
	h1.RemoveHopByHop(req.Header)
	ex := &exchange{req: req, scheme: "http", host: host, port: port, session: sess, id: id}
	resp := s.handle(req.Context(), ex)
	resp.Header.Set("Connection", "close")
	resp.Request = req
	return req, resp
}
