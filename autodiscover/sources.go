package autodiscover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"photosync/internal/untrusted"
	"strconv"
	"strings"
)

// Resolver looks up DNS SRV records; *net.Resolver is one. Tests use a
// stub so that no real DNS is asked.
type Resolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
}

// source is one step of the lookup order: it yields the endpoints to try.
type source struct {
	name string
	urls func(ctx context.Context) ([]*url.URL, error)
}

func fixed(name string, u *url.URL) source {
	return source{name: name, urls: func(context.Context) ([]*url.URL, error) { return []*url.URL{u}, nil }}
}

// sources lists the endpoints for user in the order real clients try them
// (https://learn.microsoft.com/en-us/exchange/client-developer/exchange-web-services/how-to-generate-a-list-of-autodiscover-endpoints):
// the configured domain, then, with Fallback,
// https://{email domain}/…, https://autodiscover.{email domain}/…, the
// unauthenticated HTTP redirect probe and the DNS SRV record. The email
// domain's steps are skipped when neither it nor autodiscover.{it} is an
// allowed host: photosync would refuse what they found anyway, and a
// domain that is not ours is not even asked about.
func (c *Client) sources(user string) []source {
	out := []source{fixed("configured domain", c.first)}
	if !c.fallback {
		return out
	}
	domain := user[strings.LastIndexByte(user, '@')+1:]
	if !c.allowed.Match(domain) && !c.allowed.Match("autodiscover."+domain) {
		return out
	}
	svc := func(host string) *url.URL { return &url.URL{Scheme: "https", Host: host, Path: servicePath} }
	return append(out,
		fixed("email domain", svc(domain)),
		fixed("autodiscover.{email domain}", svc("autodiscover."+domain)),
		source{name: "HTTP redirect probe", urls: func(ctx context.Context) ([]*url.URL, error) {
			u, err := c.probe(ctx, domain)
			if err != nil {
				return nil, err
			}
			return []*url.URL{u}, nil
		}},
		source{name: "DNS SRV _autodiscover._tcp." + domain, urls: func(ctx context.Context) ([]*url.URL, error) {
			return c.srv(ctx, domain)
		}},
	)
}

// probe sends the unauthenticated GET http://autodiscover.{domain}/autodiscover/autodiscover.xml
// and returns the https endpoint its redirect names. No token, no body and
// no mailbox go out over plain http, and the redirect is not followed here.
func (c *Client) probe(ctx context.Context, domain string) (*url.URL, error) {
	u := &url.URL{Scheme: "http", Host: "autodiscover." + domain, Path: poxPath}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", u, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		_ = resp.Body.Close()
	}()
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		return nil, fmt.Errorf("%s answered %s, not a redirect", u, resp.Status)
	}
	next, err := u.Parse(resp.Header.Get("Location"))
	if err != nil || next.Scheme != "https" || next.Hostname() == "" {
		return nil, fmt.Errorf("%s redirected to %q: want an https URL: %w", u, untrusted.Text(resp.Header.Get("Location"), 300), ErrRefusedURL)
	}
	// The probe names the host; the SOAP service is asked there.
	next.Path, next.RawQuery, next.Fragment = servicePath, "", ""
	return next, nil
}

// srv reads _autodiscover._tcp.{domain} and returns its targets in the
// resolver's order (priority, then weight).
func (c *Client) srv(ctx context.Context, domain string) ([]*url.URL, error) {
	_, addrs, err := c.resolver.LookupSRV(ctx, "autodiscover", "tcp", domain)
	if err != nil {
		return nil, fmt.Errorf("lookup: %w", err)
	}
	var out []*url.URL
	for _, a := range addrs {
		host := strings.TrimSuffix(a.Target, ".")
		if host == "" || a.Port == 0 {
			continue
		}
		if a.Port != 443 {
			host = net.JoinHostPort(host, strconv.Itoa(int(a.Port)))
		}
		out = append(out, &url.URL{Scheme: "https", Host: host, Path: servicePath})
	}
	if len(out) == 0 {
		return nil, errors.New("no usable record")
	}
	return out, nil
}
