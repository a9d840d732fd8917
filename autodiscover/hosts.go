package autodiscover

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Hosts is a list of host patterns that URLs from Exchange must match:
// "mail.contoso.com" matches that host only, "*.contoso.com" matches every
// name below contoso.com (any depth) but not contoso.com itself. An IP
// address matches itself. A pattern may name a port ("mail.contoso.com:444",
// "[::1]:8443"); without one it allows only the scheme's default port (443
// for https, 80 for http), so another port of an allowed name is refused
// like a foreign host. Matching ignores case and a trailing dot.
type Hosts []string

// DefaultHosts returns the patterns allowed when none are configured: the
// parent domain of the Autodiscover domain and everything below it
// (autodiscover.contoso.com → contoso.com, *.contoso.com); a two-label name
// stands for itself (contoso.com → contoso.com, *.contoso.com); an IP
// address, "localhost" or another single-label name allows only itself.
// A port the domain names is kept (localhost:8443 → localhost:8443).
func DefaultHosts(domain string) Hosts {
	host, port := domain, ""
	if h, p, err := net.SplitHostPort(domain); err == nil {
		host, port = h, p
	}
	host = normalHost(host)
	withPort := func(name string) string {
		if port == "" || port == "443" {
			return name
		}
		return net.JoinHostPort(name, port)
	}
	if _, err := netip.ParseAddr(host); err == nil || !strings.Contains(host, ".") {
		return Hosts{withPort(host)}
	}
	parent := host
	if labels := strings.Split(host, "."); len(labels) > 2 {
		parent = strings.Join(labels[1:], ".")
	}
	return Hosts{withPort(parent), withPort("*." + parent)}
}

// splitPattern cuts a pattern into its name and its port ("" for none).
// An IPv6 address carries a port only in brackets.
func splitPattern(p string) (name, port string) {
	p = strings.TrimSpace(p)
	if strings.HasPrefix(p, "[") || strings.Count(p, ":") == 1 {
		if h, pt, err := net.SplitHostPort(p); err == nil {
			return h, pt
		}
		return p, ""
	}
	return p, ""
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
	host, port := splitPattern(p)
	if port != "" || strings.HasSuffix(p, ":") {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return fmt.Errorf("host pattern %q: bad port %q", p, port)
		}
	}
	name := strings.TrimPrefix(normalHost(host), "*.")
	if _, err := netip.ParseAddr(name); err == nil {
		if strings.HasPrefix(host, "*.") {
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
				return fmt.Errorf("host pattern %q: want a host name, *.domain or an IP address, and a port", p)
			}
		}
	}
	return nil
}

// Match reports whether host (a URL's host: a name or IP address, with or
// without a port) matches one of the patterns, for https: no port means
// 443. An empty Hosts matches nothing.
func (h Hosts) Match(host string) bool {
	return h.MatchURL(&url.URL{Scheme: "https", Host: host})
}

// MatchURL reports whether u's host and port (its scheme's default when it
// names none) match one of the patterns.
func (h Hosts) MatchURL(u *url.URL) bool {
	host, port := normalHost(u.Hostname()), u.Port()
	def := defaultPort(u.Scheme)
	if port == "" {
		port = def
	}
	if host == "" {
		return false
	}
	for _, p := range h {
		name, pport := splitPattern(p)
		if pport == "" {
			pport = def
		}
		if pport != port {
			continue
		}
		name = normalHost(strings.Trim(name, "[]"))
		if suffix, ok := strings.CutPrefix(name, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return true
			}
			continue
		}
		if host == name {
			return true
		}
	}
	return false
}

func defaultPort(scheme string) string {
	if strings.EqualFold(scheme, "http") {
		return "80"
	}
	return "443"
}

// String returns the patterns comma-separated, for messages.
func (h Hosts) String() string { return strings.Join(h, ", ") }

func normalHost(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}
