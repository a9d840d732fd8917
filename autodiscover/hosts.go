package autodiscover

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Hosts is a list of host patterns that URLs from Exchange must match:
// "mail.contoso.com" matches that host only, "*.contoso.com" matches every
// name below contoso.com (any depth) but not contoso.com itself. An IP
// address matches itself. Ports are not part of a pattern. Matching ignores
// case and a trailing dot.
type Hosts []string

// DefaultHosts returns the patterns allowed when none are configured: the
// parent domain of the Autodiscover domain and everything below it
// (autodiscover.contoso.com → contoso.com, *.contoso.com); a two-label name
// stands for itself (contoso.com → contoso.com, *.contoso.com); an IP
// address, "localhost" or another single-label name allows only itself.
func DefaultHosts(domain string) Hosts {
	host := domain
	if h, _, err := net.SplitHostPort(domain); err == nil {
		host = h
	}
	host = normalHost(host)
	if _, err := netip.ParseAddr(host); err == nil || !strings.Contains(host, ".") {
		return Hosts{host}
	}
	parent := host
	if labels := strings.Split(host, "."); len(labels) > 2 {
		parent = strings.Join(labels[1:], ".")
	}
	return Hosts{parent, "*." + parent}
}

// Check reports every malformed pattern at once.
func (h Hosts) Check() error {
	var errs []error
	for _, p := range h {
		if err := checkPattern(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func checkPattern(p string) error {
	name := strings.TrimPrefix(normalHost(p), "*.")
	if _, err := netip.ParseAddr(name); err == nil {
		if strings.HasPrefix(p, "*.") {
			return fmt.Errorf("host pattern %q: a wildcard cannot precede an IP address", p)
		}
		return nil
	}
	if name == "" || len(name) > 253 {
		return fmt.Errorf("host pattern %q: empty or too long", p)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return fmt.Errorf("host pattern %q: bad label %q", p, label)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("host pattern %q: want a host name, *.domain or an IP address", p)
			}
		}
	}
	return nil
}

// Match reports whether host (a host name or IP address, with or without a
// port) matches one of the patterns. An empty Hosts matches nothing.
func (h Hosts) Match(host string) bool {
	if hh, _, err := net.SplitHostPort(host); err == nil {
		host = hh
	}
	host = normalHost(strings.Trim(host, "[]"))
	if host == "" {
		return false
	}
	for _, p := range h {
		p = normalHost(p)
		if suffix, ok := strings.CutPrefix(p, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return true
			}
			continue
		}
		if host == p {
			return true
		}
	}
	return false
}

// String returns the patterns comma-separated, for messages.
func (h Hosts) String() string { return strings.Join(h, ", ") }

func normalHost(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}
