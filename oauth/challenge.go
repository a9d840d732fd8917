package oauth

import (
	"fmt"
	"photosync/internal/untrusted"
	"strings"
)

// A Challenge is what Exchange says when it rejects a token: the Bearer
// parameters of its 401 WWW-Authenticate header and its x-ms-diagnostics
// header. The diagnostics format is not documented by Microsoft, so
// Explain reads it for hints only; nothing else depends on it.
type Challenge struct {
	ClientID         string   // client_id: Exchange's application ID
	Realm            string   // realm, when Exchange sends one
	TrustedIssuers   []string // trusted_issuers, e.g. "00000001-…@*"
	Error            string   // error (RFC 6750), when sent
	ErrorDescription string   // error_description, when sent

	DiagCode     string // x-ms-diagnostics code, e.g. "2000004"
	DiagReason   string // its reason="…"
	DiagCategory string // its error_category="…"
}

// ParseChallenge reads the WWW-Authenticate values of a 401 and its
// x-ms-diagnostics value. Values are cut to 300 bytes of printable ASCII,
// so the result can go into a log line or a report.
func ParseChallenge(wwwAuthenticate []string, diagnostics string) Challenge {
	var c Challenge
	for _, v := range wwwAuthenticate {
		for _, ch := range splitChallenges(v) {
			if !strings.EqualFold(ch.scheme, "Bearer") {
				continue
			}
			for k, val := range ch.params {
				val = untrusted.Text(val, 300)
				switch k {
				case "client_id":
					c.ClientID = val
				case "realm":
					c.Realm = val
				case "trusted_issuers", "trustedissuers":
					for _, is := range strings.Split(val, ",") {
						if is = strings.TrimSpace(is); is != "" {
							c.TrustedIssuers = append(c.TrustedIssuers, is)
						}
					}
				case "error":
					c.Error = val
				case "error_description":
					c.ErrorDescription = val
				}
			}
		}
	}
	code, rest, _ := strings.Cut(diagnostics, ";")
	c.DiagCode = untrusted.Text(code, 300)
	params := parseParams(rest, ';')
	c.DiagReason, c.DiagCategory = untrusted.Text(params["reason"], 300), untrusted.Text(params["error_category"], 300)
	return c
}

// IsZero reports whether nothing was read.
func (c Challenge) IsZero() bool {
	return c.ClientID == "" && c.Realm == "" && len(c.TrustedIssuers) == 0 && c.Error == "" && c.DiagCode == "" && c.DiagReason == ""
}

// Explain turns the challenge into findings for an administrator, the
// failing check first when the diagnostics name one. issuer is ours
// ({client id}@{realm}).
func (c Challenge) Explain(issuer string) []string {
	var out []string
	if c.DiagReason != "" || c.DiagCode != "" {
		out = append(out, fmt.Sprintf("Exchange says (x-ms-diagnostics %s, %s): %s", c.DiagCode, c.DiagCategory, c.DiagReason))
		if fix := diagnosticFix(c.DiagReason + " " + c.DiagCategory); fix != "" {
			out = append(out, "likely fix: "+fix)
		}
	}
	if c.Error != "" {
		out = append(out, fmt.Sprintf("error=%s %s", c.Error, c.ErrorDescription))
	}
	if c.ClientID != "" && !strings.EqualFold(c.ClientID, ExchangeID) {
		out = append(out, fmt.Sprintf("Exchange names itself client_id %s; our tokens are for %s: is this Exchange?", c.ClientID, ExchangeID))
	}
	if c.Realm != "" {
		_, ours, _ := strings.Cut(issuer, "@")
		if !strings.EqualFold(c.Realm, ours) {
			out = append(out, fmt.Sprintf("Exchange's realm is %s; our tokens carry our own realm %s, which is right for a partner application", c.Realm, ours))
		}
	}
	if len(c.TrustedIssuers) > 0 {
		out = append(out, fmt.Sprintf("Exchange lists trusted issuers %s; partner applications are trusted through New-PartnerApplication, not this list (ours: %s)",
			strings.Join(c.TrustedIssuers, ", "), issuer))
	}
	if len(out) == 0 {
		out = append(out, "Exchange gave no Bearer challenge and no diagnostics: is the URL an Exchange OAuth endpoint?")
	}
	return out
}

// diagnosticFix maps words of a diagnostics reason to the usual fix. The
// format is undocumented, so this is a hint, never a decision.
func diagnosticFix(reason string) string {
	r := strings.ToLower(reason)
	switch {
	case strings.Contains(r, "unknown certificate") || strings.Contains(r, "x5t"):
		return "Exchange does not know the certificate that signed the token: after a rotation run Set-PartnerApplication -RefreshAuthMetadata (photosync trust prints it)"
	case strings.Contains(r, "partner metadata") || strings.Contains(r, "invalid_resource"):
		return "Exchange cannot read our metadata document: check that s2s.public_url is reachable from Exchange and that a partner application points at it"
	case strings.Contains(r, "issuer"):
		return "Exchange does not trust our issuer: register photosync with Configure-EnterprisePartnerApplication.ps1 -AuthMetadataUrl (photosync trust prints it)"
	case strings.Contains(r, "audience"):
		return "the token's audience (Exchange host or realm) is not what Exchange expects: check exchange.autodiscover_domain and s2s.realm"
	case strings.Contains(r, "lifetime") || strings.Contains(r, "nbf") || strings.Contains(r, "exp"):
		return "the clocks disagree: check NTP on both sides, or raise s2s.clock_skew"
	case strings.Contains(r, "signature"):
		return "the signature does not verify: s2s.key must be the key of the published certificate"
	case strings.Contains(r, "delegation"):
		return "our actor token is not trusted for delegation: give the partner application the user-impersonation role"
	case strings.Contains(r, "user"):
		return "Exchange does not know the acting mailbox: check the address"
	}
	return ""
}

type challenge struct {
	scheme string
	params map[string]string
}

// splitChallenges parses one WWW-Authenticate value (RFC 9110 §11.6.1):
// schemes, each followed by comma-separated name=value parameters.
func splitChallenges(v string) []challenge {
	var out []challenge
	s := v
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return out
		}
		scheme, rest := token(s)
		if scheme == "" {
			return out
		}
		ch := challenge{scheme: scheme, params: map[string]string{}}
		s = rest
		for {
			s = strings.TrimLeft(s, " \t,")
			name, rest := token(s)
			rest = strings.TrimLeft(rest, " \t")
			if name == "" || !strings.HasPrefix(rest, "=") {
				break // the next scheme, or the end
			}
			val, after := value(strings.TrimLeft(rest[1:], " \t"))
			ch.params[strings.ToLower(name)] = val
			s = after
		}
		out = append(out, ch)
	}
}

// parseParams reads name=value pairs separated by sep.
func parseParams(s string, sep byte) map[string]string {
	out := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t"+string(sep))
		name, rest := token(s)
		rest = strings.TrimLeft(rest, " \t")
		if name == "" || !strings.HasPrefix(rest, "=") {
			return out
		}
		val, after := value(strings.TrimLeft(rest[1:], " \t"))
		out[strings.ToLower(name)] = val
		s = after
	}
}

// token returns the leading HTTP token of s and the rest.
func token(s string) (string, string) {
	i := 0
	for i < len(s) && strings.IndexByte("!#$%&'*+-.^_`|~", s[i]) >= 0 ||
		i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z') {
		i++
	}
	return s[:i], s[i:]
}

// value reads a quoted string (with \ escapes) or a token68-like run up to
// a separator.
func value(s string) (string, string) {
	if strings.HasPrefix(s, `"`) {
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				if i+1 < len(s) {
					i++
					b.WriteByte(s[i])
				}
			case '"':
				return b.String(), s[i+1:]
			default:
				b.WriteByte(s[i])
			}
		}
		return b.String(), ""
	}
	i := strings.IndexAny(s, ",; \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}
