package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// A route is one URL photosync answers. Its name is the request metrics'
// route label: stable, and never the path, so that no owner's address
// becomes a label.
type route struct {
	name    string
	methods []string
	path    string // in Echo's syntax
	handle  echo.HandlerFunc
}

var getHead = []string{http.MethodGet, http.MethodHead}

// routes is the one table of every URL photosync answers, in every dialect:
//
//	photo        GET /photos/{email}?size=HR96x96      404 when there is no photo
//	edit         GET /photos/edit                      302 to the viewer's photo upload page
//	userphoto    GET /_layouts/15/userphoto.aspx?accountname={email}&size=S|M|L
//	                                                   a placeholder when there is no photo
//	metadata     GET /_layouts/15/metadata/json/1      our auth metadata document
//	ews          GET /EWS/Exchange.asmx/s/GetUserPhoto?email=…&size=HR…   as Exchange
//	graph        GET [/v1.0|/beta]/users/{id}/photo/$value          as Microsoft Graph, the largest size
//	             GET [/v1.0|/beta]/me/photo/$value                  the signed-in viewer's
//	graph_sized  GET [/v1.0|/beta]/users/{id}/photos/{size}/$value  as Microsoft Graph
//	             GET [/v1.0|/beta]/me/photos/{size}/$value
//	graph_metadata GET [/v1.0|/beta]/{users/{id}|me}/photo[s/{size}]  Graph's profilePhoto entity
//	healthz      GET /healthz
//	readyz       GET /readyz
//	directory    GET /                                 the people page
//
// metadata and directory are there only when Options asks for them.
func (h *Handler) routes() []route {
	rs := []route{
		{"edit", getHead, "/photos/edit", h.edit},
		{"photo", getHead, "/photos/:email", h.native},
		{"userphoto", getHead, "/_layouts/15/userphoto.aspx", h.sharePoint},
		{"ews", getHead, "/EWS/Exchange.asmx/s/GetUserPhoto", h.ews},
		{"healthz", getHead, "/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") }},
		{"readyz", getHead, "/readyz", h.ready},
	}
	rs = append(rs, h.graphRoutes()...)
	if h.opts.Metadata != nil {
		rs = append(rs, route{"metadata", getHead, "/_layouts/15/metadata/json/1", echo.WrapHandler(h.opts.Metadata)})
	}
	if len(h.opts.People) > 0 {
		rs = append(rs, route{"directory", []string{http.MethodGet}, "/", h.people})
	}
	return rs
}

// routeOf names the route of a request Echo has routed to path, its
// route's path in Echo's syntax (see ServeRoute).
func (h *Handler) routeOf(path string) string {
	if name, ok := h.names[path]; ok {
		return name
	}
	if h.opts.Upstream != nil {
		return "upstream"
	}
	return "other"
}
