package web

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// sidecar puts photosync in front of an application at upstream: requests
// for photosync's own routes are answered here, every other request goes to
// the application unchanged (streamed responses and websockets included).
//
// It must be installed after identify, which has already removed the
// identity header unless a trusted proxy sent it: the application can rely
// on the header it receives.
func (h *Handler) sidecar(ec *echo.Echo, upstream *url.URL) echo.MiddlewareFunc {
	// Echo's proxy sets X-Real-IP and X-Forwarded-For from RealIP: believe
	// forwarded addresses only from the trusted proxies, as identify does.
	trust := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range h.opts.TrustedProxies {
		trust = append(trust, echo.TrustIPRange(&net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	ec.IPExtractor = echo.ExtractIPFromXFFHeader(trust...)

	// Echo dials websockets itself, with TLS exactly when TLSClientConfig
	// is set; a clone of the default transport may carry one already.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = nil
	if upstream.Scheme == "https" {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	target := &url.URL{Scheme: upstream.Scheme, Host: upstream.Host}
	return middleware.ProxyWithConfig(middleware.ProxyConfig{
		// A route of ours matched the path (for any method): ours to
		// answer, including its 404 and 405. Echo sets the path before
		// middleware runs.
		Skipper: func(c echo.Context) bool {
			_, ours := h.names[c.Path()]
			return ours
		},
		Balancer:  middleware.NewRoundRobinBalancer([]*middleware.ProxyTarget{{URL: target}}),
		Transport: tr,
		// The upstream's address and dial errors go to the log, not to the
		// client.
		ErrorHandler: func(c echo.Context, err error) error {
			if c.IsWebSocket() {
				// Echo hijacks the connection before it dials the
				// application: nothing can be written back any more.
				h.logFor(c).Debug("websocket to the application ended", "path", c.Request().URL.Path, "err", err)
				return nil
			}
			var he *echo.HTTPError
			if errors.As(err, &he) && he.Code == middleware.StatusCodeContextCanceled {
				return he
			}
			return echo.NewHTTPError(http.StatusBadGateway, "the application is unreachable").WithInternal(err)
		},
	})
}
