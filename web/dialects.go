package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	psync "photosync/sync"
	"photosync/sync/photo"
)

// This file answers the photo URLs that existing clients already call, so
// they can be pointed at photosync instead of Exchange or Microsoft Graph.
// Each dialect parses its own URL and error format, and hands the photo to
// the same Engine.Photo and writePhoto as the native route: the caching
// headers (ETag, Cache-Control, 304 on If-None-Match) are the same everywhere.
// Their routes are in the one table, routes.go.

// ews serves Exchange's REST photo URL,
// GET /EWS/Exchange.asmx/s/GetUserPhoto?email=…&size=HR…: both parameters
// are required, as Exchange requires them; 404 when there is no photo. As
// Exchange does, it answers If-None-Match with the ETag bare as well as
// quoted, and sends Expires beside Cache-Control: the EWS Managed API reads
// Expires to know how long to keep the photo.
func (h *Handler) ews(c echo.Context) error {
	email := c.QueryParam("email")
	if email == "" {
		return echo.NewHTTPError(http.StatusBadRequest, "email is required")
	}
	owner, err := photo.NormalizeEmail(email)
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "email: "+err.Error())
	}
	sizeParam := c.QueryParam("size")
	if sizeParam == "" {
		return errSizeRequired
	}
	size, ok := photo.CanonicalSize(sizeParam)
	if !ok {
		return errUnknownSize
	}
	r := c.Request()
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		r.Header.Set("If-None-Match", quoteETags(inm))
	}
	ctx := r.Context()
	p, err := h.engine.Photo(ctx, owner, size, h.viewer(c))
	hdr := c.Response().Header()
	if errors.Is(err, psync.ErrNoPhoto) {
		hdr.Set("Cache-Control", "no-cache")
		hdr.Set("Expires", time.Now().UTC().Format(http.TimeFormat))
		return errNoPhoto
	}
	if err != nil {
		return err
	}
	hdr.Set("Expires", time.Now().Add(p.MaxAge).UTC().Format(http.TimeFormat))
	return writePhoto(c, answer{Photo: p})
}

var errSizeRequired = echo.NewHTTPError(http.StatusBadRequest, "size is required (one of "+strings.Join(photo.Sizes, ", ")+")")

// quoteETags quotes the bare entity tags of an If-None-Match value, as
// EWS clients send them (Exchange accepts both forms); tags already quoted,
// weak or "*" are kept.
func quoteETags(v string) string {
	if strings.IndexByte(v, '"') >= 0 || strings.TrimSpace(v) == "*" {
		return v
	}
	tags := strings.Split(v, ",")
	for i, t := range tags {
		if t = strings.TrimSpace(t); t != "" {
			tags[i] = `"` + t + `"`
		}
	}
	return strings.Join(tags, ", ")
}

// pathParam returns the path parameter name unescaped. Echo routes on the
// escaped path when the request has one and hands the parameter over still
// escaped; a parameter holding a slash is refused, as it would be a path.
func pathParam(c echo.Context, name string) (string, error) {
	param := c.Param(name)
	if c.Request().URL.RawPath != "" {
		var err error
		if param, err = url.PathUnescape(param); err != nil {
			return "", err
		}
	}
	if containsEither(param, '/', '\\') {
		return "", errNotPhotoPath
	}
	return param, nil
}
