package web

import (
	"bytes"
	"errors"
	"image"
	_ "image/gif"  // for the metadata's width and height
	_ "image/jpeg" // for the metadata's width and height
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	psync "photosync/sync"
	"photosync/sync/photo"
)

// Microsoft Graph's photo URLs, as Graph SDKs send them: the SDKs keep the
// API version in the path (the JavaScript client's defaultVersion is v1.0,
// msgraph-sdk-go's base URL ends in /v1.0), so every URL is answered with
// /v1.0, /beta or no version in front. /me is the signed-in viewer. The
// URLs without $value answer the profilePhoto entity, the photo's metadata
// (https://learn.microsoft.com/graph/api/profilephoto-get). Every error on
// these routes is written in Graph's JSON error format, by handleError.

// graphVersions are the path prefixes the Graph routes are served under.
var graphVersions = []string{"", "/v1.0", "/beta"}

// graphRoutes are the Graph routes, for the table in routes.go.
func (h *Handler) graphRoutes() []route {
	var rs []route
	for _, v := range graphVersions {
		rs = append(rs,
			route{"graph", getHead, v + "/users/:id/photo/$value", h.graphValue(false)},
			route{"graph", getHead, v + "/me/photo/$value", h.graphValue(true)},
			route{"graph_sized", getHead, v + "/users/:id/photos/:size/$value", h.graphValue(false)},
			route{"graph_sized", getHead, v + "/me/photos/:size/$value", h.graphValue(true)},
			route{"graph_metadata", getHead, v + "/users/:id/photo", h.graphMetadata(false)},
			route{"graph_metadata", getHead, v + "/me/photo", h.graphMetadata(true)},
			route{"graph_metadata", getHead, v + "/users/:id/photos/:size", h.graphMetadata(false)},
			route{"graph_metadata", getHead, v + "/me/photos/:size", h.graphMetadata(true)},
		)
	}
	return rs
}

// A graphError is an answer in Graph's JSON error format. Its texts are
// fixed: nothing from the request is echoed back.
type graphError struct {
	Status  int
	Code    string
	Message string
}

func (e *graphError) Error() string { return "graph: " + strconv.Itoa(e.Status) + " " + e.Code }

// The Graph answers several routes give, word for word where Graph's own
// wording is known.
var (
	errGraphBadID = &graphError{http.StatusBadRequest, "BadRequest",
		"Invalid user id: want the user principal name (an email address)."}
	errGraphBadSize = &graphError{http.StatusBadRequest, "ErrorInvalidSize",
		"The requested photo size is not supported. Supported sizes: 48x48, 64x64, 96x96, 120x120, 240x240, 360x360, 432x432, 504x504, 648x648."}
	errGraphNoPhoto = &graphError{http.StatusNotFound, "ImageNotFound",
		"Exception of type 'Microsoft.Fast.Profile.Core.Exception.ImageNotFoundException' was thrown."}
	errGraphAnonymous = &graphError{http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty."}
)

// graphCodes are Graph's codes for the statuses other errors end in
// (https://learn.microsoft.com/graph/errors).
var graphCodes = map[int]string{
	http.StatusBadRequest:          "invalidRequest",
	http.StatusUnauthorized:        "InvalidAuthenticationToken",
	http.StatusForbidden:           "accessDenied",
	http.StatusNotFound:            "itemNotFound",
	http.StatusMethodNotAllowed:    "notSupported",
	http.StatusTooManyRequests:     "activityLimitReached",
	http.StatusServiceUnavailable:  "serviceNotAvailable",
	http.StatusGatewayTimeout:      "timeout",
	http.StatusInternalServerError: "generalException",
}

// isGraphRoute reports whether c took one of the Graph routes.
func (h *Handler) isGraphRoute(c echo.Context) bool {
	return strings.HasPrefix(h.names[c.Path()], "graph")
}

// writeGraphError writes err, already mapped to code and msg by
// handleError, as Graph's JSON error.
func writeGraphError(c echo.Context, err error, code int, msg string) {
	var ge *graphError
	if !errors.As(err, &ge) {
		gc, ok := graphCodes[code]
		if !ok {
			gc = "generalException"
		}
		ge = &graphError{code, gc, msg}
	}
	if ge.Status == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="photosync"`)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(ge.Status)
		return
	}
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	_ = c.JSON(ge.Status, map[string]body{"error": {Code: ge.Code, Message: ge.Message}})
}

// graphTarget reads whose photo, at which size, a Graph URL asks for: the
// {id} (a user principal name) or, for /me, the signed-in viewer; the
// {size} as Graph names it, or the largest when the URL names none.
func graphTarget(c echo.Context, me bool) (owner, size string, err error) {
	size = photo.MasterSize
	if g := c.Param("size"); g != "" {
		var ok bool
		if size, ok = photo.FromGraphSize(g); !ok {
			return "", "", errGraphBadSize
		}
	}
	if me {
		if owner = ViewerFrom(c.Request().Context()); owner == "" {
			return "", "", errGraphAnonymous
		}
		return owner, size, nil
	}
	id, err := pathParam(c, "id")
	if err != nil {
		return "", "", errGraphBadID
	}
	if owner, err = photo.NormalizeEmail(id); err != nil {
		return "", "", errGraphBadID
	}
	return owner, size, nil
}

// graphPhoto asks the engine for the photo a Graph URL names.
func (h *Handler) graphPhoto(c echo.Context, me bool) (psync.Photo, string, error) {
	owner, size, err := graphTarget(c, me)
	if err != nil {
		return psync.Photo{}, "", err
	}
	ctx := c.Request().Context()
	p, err := h.engine.Photo(ctx, owner, size, h.viewer(c))
	if errors.Is(err, psync.ErrNoPhoto) {
		c.Response().Header().Set("Cache-Control", "no-cache")
		return p, owner, errGraphNoPhoto
	}
	return p, owner, err
}

// graphValue serves the photo's bytes: …/photo/$value (the largest) and
// …/photos/{size}/$value.
func (h *Handler) graphValue(me bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, _, err := h.graphPhoto(c, me)
		if err != nil {
			return err
		}
		if me {
			// The same URL is another person's photo for another viewer.
			c.Response().Header().Set("Vary", h.opts.IdentityHeader)
		}
		return writePhoto(c, answer{Photo: p})
	}
}

// profilePhoto is Graph's profilePhoto entity.
type profilePhoto struct {
	Context          string `json:"@odata.context,omitempty"`
	MediaContentType string `json:"@odata.mediaContentType"`
	MediaETag        string `json:"@odata.mediaEtag"`
	ID               string `json:"id"`
	Width            int    `json:"width"`
	Height           int    `json:"height"`
}

// graphMetadata serves the profilePhoto entity: …/photo and
// …/photos/{size}. Its id is the size as Graph writes it ("240X240"); the
// width and height are the stored photo's own.
func (h *Handler) graphMetadata(me bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, owner, err := h.graphPhoto(c, me)
		if err != nil {
			return err
		}
		w, ht := 0, 0
		if cfg, _, err := image.DecodeConfig(bytes.NewReader(p.Body)); err == nil {
			w, ht = cfg.Width, cfg.Height
		}
		id := strings.ToUpper(c.Param("size"))
		if id == "" {
			id = strconv.Itoa(w) + "X" + strconv.Itoa(ht)
		}
		entity := "/photo/$entity"
		if c.Param("size") != "" {
			entity = "/photos/$entity"
		}
		version := "/v1.0"
		if strings.HasPrefix(c.Path(), "/beta/") {
			version = "/beta"
		}
		hdr := c.Response().Header()
		hdr.Set("Cache-Control", "private, max-age="+strconv.Itoa(int(p.MaxAge.Seconds())))
		if me {
			hdr.Set("Vary", h.opts.IdentityHeader)
		}
		return c.JSON(http.StatusOK, profilePhoto{
			Context:          c.Scheme() + "://" + c.Request().Host + version + "/$metadata#users('" + owner + "')" + entity,
			MediaContentType: p.ContentType,
			MediaETag:        p.ETag,
			ID:               id,
			Width:            w,
			Height:           ht,
		})
	}
}
