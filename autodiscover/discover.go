package autodiscover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// discover runs one uncached lookup of email, following redirects.
func (c *Client) discover(ctx context.Context, email string) (Settings, error) {
	s := Settings{Email: email}
	user := email
	seenUsers := map[string]bool{email: true}
	visited := map[string]bool{} // endpoints asked for user
	target := c.first
	hops := 0
	hop := func(kind, to string) error {
		hops++
		if hops > c.maxHops {
			return fmt.Errorf("%w: more than %d hops for %q, the last %s %s", ErrTooManyRedirects, c.maxHops, email, kind, to)
		}
		s.Redirects = append(s.Redirects, kind+" "+to)
		c.log.DebugContext(ctx, "autodiscover redirect", "email", email, "kind", kind, "to", to)
		return nil
	}

	for {
		if visited[target.String()] {
			return s, fmt.Errorf("autodiscover: redirect loop: %s asked twice for %q", target, user)
		}
		visited[target.String()] = true

		next, ur, err := c.exchange(ctx, target, user)
		if err != nil {
			return s, err
		}
		if next != nil { // an HTTP redirect
			if err := hop("HTTP", next.String()); err != nil {
				return s, err
			}
			target = next
			continue
		}

		switch ur.code {
		case "NoError":
			return c.settings(s, ur, target)
		case "RedirectAddress":
			if ur.target == "" {
				return s, &Error{Code: ur.code, Message: "no RedirectTarget", URL: target.String()}
			}
			addr, err := normalizeEmail(ur.target)
			if err != nil {
				return s, fmt.Errorf("autodiscover: RedirectAddress from %s: %w", target, err)
			}
			if addr == user {
				return s, fmt.Errorf("autodiscover: %s redirected %q to the same address", target, user)
			}
			if seenUsers[addr] {
				return s, fmt.Errorf("autodiscover: redirect loop: %q was already asked for", addr)
			}
			if err := hop("RedirectAddress", addr); err != nil {
				return s, err
			}
			seenUsers[addr] = true
			user = addr
			// A new mailbox starts over at the configured endpoint.
			visited = map[string]bool{}
			target = c.first
		case "RedirectUrl":
			if ur.target == "" {
				return s, &Error{Code: ur.code, Message: "no RedirectTarget", URL: target.String()}
			}
			next, err := c.checkURL("RedirectTarget", ur.target)
			if err != nil {
				return s, err
			}
			if err := hop("RedirectUrl", next.String()); err != nil {
				return s, err
			}
			target = next
		case "InvalidUser":
			return s, fmt.Errorf("%w %q (%s answered: %s)", ErrInvalidUser, user, target, sanitize(ur.message, 300, false))
		case "ServerBusy":
			return s, fmt.Errorf("%w: %s answered ServerBusy for %q: %s", ErrServerBusy, target, user, sanitize(ur.message, 300, false))
		default:
			return s, &Error{Code: sanitize(ur.code, 100, true), Message: sanitize(ur.message, 300, false), URL: target.String()}
		}
	}
}

// settings fills s from a NoError answer and checks every URL in it.
func (c *Client) settings(s Settings, ur userResponse, from *url.URL) (Settings, error) {
	s.SMTPAddress = ur.settings[settingSMTPAddress]
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
			why = "Exchange said " + sanitize(e, 300, false)
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
		return fmt.Errorf("autodiscover: %s %q: %s", setting, sanitize(raw, 300, false), why)
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
	case !c.allowed.Match(u.Host):
		return nil, bad("host " + u.Hostname() + " is outside the allowed hosts (" + c.allowed.String() +
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
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(buildRequest(u.String(), user)))
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
			return nil, userResponse{}, fmt.Errorf("autodiscover: %s answered %s with Location %q: %w", u, resp.Status, sanitize(loc, 300, false), err)
		}
		next, err := c.checkURL("Location", abs.String())
		if err != nil {
			return nil, userResponse{}, err
		}
		return next, userResponse{}, nil
	default:
		se := &StatusError{URL: u.String(), StatusCode: resp.StatusCode, Status: resp.Status}
		if resp.StatusCode == http.StatusUnauthorized {
			se.Challenge = sanitize(strings.Join(resp.Header.Values("WWW-Authenticate"), ", "), 300, true)
		} else if body, err := readBody(resp.Body); err == nil {
			// A 500 may carry a SOAP fault that says more than the status.
			var f *soapFault
			if _, err := parseResponse(body); errors.As(err, &f) {
				se.Fault = sanitize(f.message, 300, false)
			}
		}
		return nil, userResponse{}, se
	}

	body, err := readBody(resp.Body)
	if err != nil {
		return nil, userResponse{}, fmt.Errorf("autodiscover: answer from %s: %w", u, err)
	}
	ur, err := parseResponse(body)
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
