package autodiscover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"photosync/internal/untrusted"
	"strings"
)

// walk is the state of one lookup across endpoints and mailboxes.
type walk struct {
	email     string
	s         Settings
	hops      int
	seenUsers map[string]bool
}

// hop counts one redirect of any kind against MaxRedirects.
func (c *Client) hop(ctx context.Context, w *walk, kind, to string) error {
	w.hops++
	if w.hops > c.maxHops {
		return fmt.Errorf("%w: more than %d hops for %q, the last %s %s", ErrTooManyRedirects, c.maxHops, w.email, kind, to)
	}
	w.s.Redirects = append(w.s.Redirects, kind+" "+to)
	c.log.DebugContext(ctx, "autodiscover redirect", "email", w.email, "kind", kind, "to", to)
	return nil
}

// discover runs one uncached lookup of email: the endpoints in lookup order
// for the mailbox, again for each RedirectAddress.
func (c *Client) discover(ctx context.Context, email string) (Settings, error) {
	w := &walk{email: email, s: Settings{Email: email}, seenUsers: map[string]bool{email: true}}
	user := email
	for {
		next, err := c.lookupUser(ctx, w, user)
		if err != nil || next == "" {
			return w.s, err
		}
		user = next
	}
}

// lookupUser tries the endpoints for user in lookup order until one
// answers. It returns the address of a RedirectAddress, or "" when w.s
// holds the settings. An endpoint that cannot be reached or answers an HTTP
// error lets the next one be tried; an answer from Exchange (InvalidUser, a
// hostile URL, a redirect loop, …) ends the lookup.
func (c *Client) lookupUser(ctx context.Context, w *walk, user string) (string, error) {
	visited := map[string]bool{} // endpoints asked for user
	var failed []error
	for _, src := range c.sources(user) {
		targets, err := src.urls(ctx)
		if err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", src.name, err))
			continue
		}
		for _, target := range targets {
			if _, err := c.checkURL(src.name, target.String()); err != nil {
				failed = append(failed, err)
				continue
			}
			if visited[target.String()] {
				continue
			}
			next, err := c.follow(ctx, w, target, user, visited)
			var nf *nextEndpoint
			if errors.As(err, &nf) {
				failed = append(failed, fmt.Errorf("%s %s: %w", src.name, target, nf.err))
				continue
			}
			return next, err
		}
	}
	switch len(failed) {
	case 0:
		return "", fmt.Errorf("autodiscover: no endpoint to ask for %q", user)
	case 1:
		return "", errors.Unwrap(failed[0]) // the one endpoint's own error, as it came
	}
	return "", fmt.Errorf("autodiscover: no endpoint answered for %q: %w", user, errors.Join(failed...))
}

// refusedURL is a URL from Exchange that the Client will not call: the
// lookup stops there, no other endpoint is tried.
type refusedURL struct{ msg string }

func (e *refusedURL) Error() string { return e.msg }

// Unwrap makes errors.Is(err, ErrRefusedURL) true.
func (e *refusedURL) Unwrap() error { return ErrRefusedURL }

// nextEndpoint wraps an error after which the next endpoint is tried.
type nextEndpoint struct{ err error }

func (e *nextEndpoint) Error() string { return e.err.Error() }
func (e *nextEndpoint) Unwrap() error { return e.err }

// follow asks target for user and follows HTTP redirects and RedirectUrl
// from there. It returns the address of a RedirectAddress, or "" when w.s
// holds the settings. When SOAP is not offered (404) it asks the POX
// endpoint of the same host.
func (c *Client) follow(ctx context.Context, w *walk, target *url.URL, user string, visited map[string]bool) (string, error) {
	first := true
	for {
		if visited[target.String()] {
			return "", fmt.Errorf("autodiscover: redirect loop: %s asked twice for %q", target, user)
		}
		visited[target.String()] = true

		next, ur, err := c.exchange(ctx, target, user)
		var se *StatusError
		switch {
		case errors.As(err, &se) && se.StatusCode == http.StatusNotFound && strings.EqualFold(target.Path, servicePath):
			pox := *target
			pox.Path = poxPath
			c.log.DebugContext(ctx, "autodiscover soap not offered, trying pox", "url", pox.String())
			target = &pox
			continue
		case err != nil && first && !errors.As(err, new(*refusedURL)):
			return "", &nextEndpoint{err: err}
		case err != nil:
			return "", err
		}
		first = false
		if next != nil { // an HTTP redirect
			if err := c.hop(ctx, w, "HTTP", next.String()); err != nil {
				return "", err
			}
			target = next
			continue
		}

		switch ur.code {
		case "NoError":
			s, err := c.settings(w.s, ur, target)
			w.s = s
			return "", err
		case "RedirectAddress":
			if ur.target == "" {
				return "", &Error{Code: ur.code, Message: "no RedirectTarget", URL: target.String()}
			}
			addr, err := normalizeEmail(ur.target)
			if err != nil {
				return "", fmt.Errorf("autodiscover: RedirectAddress from %s: %w", target, err)
			}
			if addr == user {
				return "", fmt.Errorf("autodiscover: %s redirected %q to the same address", target, user)
			}
			if w.seenUsers[addr] {
				return "", fmt.Errorf("autodiscover: redirect loop: %q was already asked for", addr)
			}
			if err := c.hop(ctx, w, "RedirectAddress", addr); err != nil {
				return "", err
			}
			w.seenUsers[addr] = true
			return addr, nil
		case "RedirectUrl":
			if ur.target == "" {
				return "", &Error{Code: ur.code, Message: "no RedirectTarget", URL: target.String()}
			}
			next, err := c.checkURL("RedirectTarget", ur.target)
			if err != nil {
				return "", err
			}
			if err := c.hop(ctx, w, "RedirectUrl", next.String()); err != nil {
				return "", err
			}
			target = next
		case "InvalidUser":
			return "", fmt.Errorf("%w %q (%s answered: %s)", ErrInvalidUser, user, target, untrusted.Text(ur.message, 300))
		case "ServerBusy":
			return "", fmt.Errorf("%w: %s answered ServerBusy for %q: %s", ErrServerBusy, target, user, untrusted.Text(ur.message, 300))
		default:
			return "", &Error{Code: untrusted.Text(ur.code, 100), Message: untrusted.Text(ur.message, 300), URL: target.String()}
		}
	}
}

// settings fills s from a NoError answer and checks every URL in it.
func (c *Client) settings(s Settings, ur userResponse, from *url.URL) (Settings, error) {
	s.SMTPAddress = ur.settings[settingSMTPAddress]
	s.DisplayName = untrusted.Text(ur.settings[settingDisplayName], 256)
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{settingExternalPhotos, &s.ExternalPhotosURL},
		{settingInternalPhotos, &s.InternalPhotosURL},
		{settingExternalEcp, &s.ExternalEcpPhotoURL},
		{settingInternalEcp, &s.InternalEcpPhotoURL},
		{settingExternalEWS, &s.ExternalEWSURL},
		{settingInternalEWS, &s.InternalEWSURL},
	} {
		v := ur.settings[f.name]
		if v == "" {
			continue
		}
		if _, err := c.checkURL(f.name, v); err != nil {
			return Settings{Email: s.Email, Redirects: s.Redirects}, err
		}
		*f.dst = v
	}
	if s.ExternalPhotosURL == "" {
		why := "absent from the answer"
		if e, ok := ur.settingErrors[settingExternalPhotos]; ok {
			why = "Exchange said " + untrusted.Text(e, 300)
		}
		return s, fmt.Errorf("%w for %q (%s, from %s). SharePoint logs this as "+
			"\"PhotosUrl or EcpPhotoUrl is null (from AutoDiscover)\". Exchange fills it from the external URL "+
			"of the EWS virtual directory: Set-WebServicesVirtualDirectory -ExternalUrl https://mail.example.com/EWS/Exchange.asmx",
			ErrNoPhotosURL, s.Email, why, from)
	}
	return s, nil
}

// checkURL parses a URL that came from Exchange and refuses what the
// Client must not call: not absolute, a scheme other than https (or http
// with AllowHTTP), no host, userinfo, a host outside AllowedHosts.
func (c *Client) checkURL(setting, raw string) (*url.URL, error) {
	bad := func(why string) error {
		return &refusedURL{msg: fmt.Sprintf("autodiscover: %s %q: %s", setting, untrusted.Text(raw, 300), why)}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, bad("not a URL")
	}
	switch {
	case !u.IsAbs():
		return nil, bad("not an absolute URL")
	case u.Scheme == "https":
	case u.Scheme == "http" && c.allowHTTP:
	case u.Scheme == "http":
		return nil, bad("http refused, https only (AllowHTTP is off)")
	default:
		return nil, bad("scheme " + u.Scheme + " refused")
	}
	switch {
	case u.Opaque != "" || u.Hostname() == "":
		return nil, bad("no host")
	case u.User != nil:
		return nil, bad("userinfo refused")
	case !c.allowed.MatchURL(u):
		return nil, bad("host " + u.Host + " is outside the allowed hosts (" + c.allowed.String() +
			"); add it to exchange.allowed_hosts if it is yours")
	}
	return u, nil
}

// exchange POSTs one GetUserSettings request for user to u. It returns the
// checked next URL of an HTTP redirect, or the parsed answer.
func (c *Client) exchange(ctx context.Context, u *url.URL, user string) (*url.URL, userResponse, error) {
	token, err := c.tokens.Token(ctx, user, u.Host)
	if err != nil {
		return nil, userResponse{}, fmt.Errorf("autodiscover: token for %q toward %s: %w", user, u.Host, err)
	}
	pox := strings.HasSuffix(strings.ToLower(u.Path), ".xml")
	parse := parseResponse
	body := buildRequest(u.String(), user)
	if pox {
		parse, body = parsePOXResponse, buildPOXRequest(user)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, userResponse{}, fmt.Errorf("autodiscover: request to %s: %w", u, err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("Accept", "text/xml")
	req.Header.Set("Authorization", "Bearer "+token)

	c.log.DebugContext(ctx, "autodiscover request", "url", u.String(), "user", user)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, userResponse{}, fmt.Errorf("autodiscover: post to %s: %w", u, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		_ = resp.Body.Close()
	}()
	c.log.DebugContext(ctx, "autodiscover answer", "url", u.String(), "status", resp.StatusCode)

	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		loc := resp.Header.Get("Location")
		if loc == "" {
			return nil, userResponse{}, fmt.Errorf("autodiscover: %s answered %s without Location", u, resp.Status)
		}
		abs, err := u.Parse(loc)
		if err != nil {
			return nil, userResponse{}, fmt.Errorf("autodiscover: %s answered %s with Location %q: %w", u, resp.Status, untrusted.Text(loc, 300), err)
		}
		next, err := c.checkURL("Location", abs.String())
		if err != nil {
			return nil, userResponse{}, err
		}
		return next, userResponse{}, nil
	default:
		se := &StatusError{URL: u.String(), StatusCode: resp.StatusCode, Status: resp.Status}
		if resp.StatusCode == http.StatusUnauthorized {
			se.Challenge = untrusted.Text(strings.Join(resp.Header.Values("WWW-Authenticate"), ", "), 300)
			se.Diagnostics = untrusted.Text(resp.Header.Get("X-Ms-Diagnostics"), 300)
		} else if body, err := readBody(resp.Body); err == nil {
			// A 500 may carry a SOAP fault that says more than the status.
			var f *soapFault
			if _, err := parseResponse(body); errors.As(err, &f) {
				se.Fault = untrusted.Text(f.message, 300)
			}
		}
		return nil, userResponse{}, se
	}

	body, err = readBody(resp.Body)
	if err != nil {
		return nil, userResponse{}, fmt.Errorf("autodiscover: answer from %s: %w", u, err)
	}
	ur, err := parse(body)
	if err != nil {
		return nil, userResponse{}, fmt.Errorf("autodiscover: answer from %s: %w", u, err)
	}
	return nil, ur, nil
}

// readBody reads at most maxBody bytes and fails when there are more.
func readBody(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading: %w", err)
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("body larger than %d bytes", maxBody)
	}
	return b, nil
}
