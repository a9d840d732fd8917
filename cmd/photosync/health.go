package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// errUnhealthy makes `photosync health` exit 1 after it has said why.
var errUnhealthy = errors.New("unhealthy")

// healthCmd runs `photosync health`: a probe for a container HEALTHCHECK in
// an image without a shell or curl (distroless). It exits 0 when the URL
// answers 200 within the timeout, 1 otherwise.
func healthCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("health", stderr)
	rawURL := fs.String("url", "http://127.0.0.1:8080/healthz", "the `URL` to ask")
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait for the answer, a `DURATION`")
	remote := fs.Bool("allow-remote", false, "allow a URL whose host is not loopback")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	u, err := healthURL(*rawURL, *remote)
	if err != nil {
		fmt.Fprintf(stderr, "photosync health: --url: %v\n", err)
		return errUsage
	}
	if err := probe(ctx, u, *timeout); err != nil {
		fmt.Fprintf(stderr, "photosync health: %s: %v\n", u, err)
		return errUnhealthy
	}
	fmt.Fprintf(stdout, "%s: ok\n", u)
	return nil
}

// healthURL checks that s is an http(s) URL and, unless remote, that its
// host is loopback: a health check asks the process beside it, and a probe
// that can be pointed anywhere is a request forger on the pod's network.
func healthURL(s string, remote bool) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q: want an http or https URL", s)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%q: no host", s)
	}
	if !remote && !loopback(u.Hostname()) {
		return nil, fmt.Errorf("%q: host is not loopback (pass --allow-remote to ask another machine)", s)
	}
	return u, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// probe asks u once: no proxy from the environment, no redirect followed,
// no keep-alive; only a 200 within timeout is healthy.
func probe(ctx context.Context, u *url.URL, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}
