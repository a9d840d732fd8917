package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

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
// are required, as Exchange requires them; 404 when there is no photo.
func (h *Handler) ews(c echo.Context) error {
	email := c.QueryParam("email")
	if email == "" {
		return echo.NewHTTPError(http.StatusBadRequest, "email is required")
	}
	owner, err := photo.NormalizeEmail(email)
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "email: "+err.Error())
	}
	size, ok := photo.CanonicalSize(c.QueryParam("size"))
	if !ok {
		return errUnknownSize
	}
	ctx := c.Request().Context()
	p, err := h.engine.Photo(ctx, owner, size, ViewerFrom(ctx))
	if errors.Is(err, psync.ErrNoPhoto) {
		c.Response().Header().Set("Cache-Control", "no-cache")
		return errNoPhoto
	}
	if err != nil {
		return err
	}
	return writePhoto(c, answer{Photo: p})
}

// graphLargest serves GET /users/{id}/photo/$value: Graph's default photo is
// the largest one.
func (h *Handler) graphLargest(c echo.Context) error {
	return h.graph(c, photo.MasterSize)
}

// graphSized serves GET /users/{id}/photos/{size}/$value, size as Graph names
// it (48x48 … 648x648).
func (h *Handler) graphSized(c echo.Context) error {
	size, ok := photo.FromGraphSize(c.Param("size"))
	if !ok {
		return graphError(c, http.StatusBadRequest, "ErrorInvalidSize",
			"The requested photo size is not supported. Supported sizes: 48x48, 64x64, 96x96, 120x120, 240x240, 360x360, 432x432, 504x504, 648x648.")
	}
	return h.graph(c, size)
}

func (h *Handler) graph(c echo.Context, size string) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return graphError(c, http.StatusBadRequest, "BadRequest", "Invalid user id: want the user principal name (an email address).")
	}
	owner, err := photo.NormalizeEmail(id)
	if err != nil {
		return graphError(c, http.StatusBadRequest, "BadRequest", "Invalid user id: want the user principal name (an email address).")
	}
	ctx := c.Request().Context()
	p, err := h.engine.Photo(ctx, owner, size, ViewerFrom(ctx))
	if errors.Is(err, psync.ErrNoPhoto) {
		c.Response().Header().Set("Cache-Control", "no-cache")
		// Graph's answer for a user without a photo, word for word.
		return graphError(c, http.StatusNotFound, "ImageNotFound",
			"Exception of type 'Microsoft.Fast.Profile.Core.Exception.ImageNotFoundException' was thrown.")
	}
	if err != nil {
		return err
	}
	return writePhoto(c, answer{Photo: p})
}

// graphError writes Graph's JSON error body. Its texts are fixed: nothing
// from the request is echoed back.
func graphError(c echo.Context, status int, code, message string) error {
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if c.Request().Method == http.MethodHead {
		return c.NoContent(status)
	}
	return c.JSON(status, map[string]body{"error": {Code: code, Message: message}})
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
	if strings.ContainsAny(param, `/\`) {
		return "", errNotPhotoPath
	}
	return param, nil
}
