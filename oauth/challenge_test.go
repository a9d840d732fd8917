package oauth

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestParseChallenge(t *testing.T) {
	tests := []struct {
		name  string
		www   []string
		diag  string
		check func(c Challenge) bool
	}{
		{"exchange", []string{`Bearer client_id="00000002-0000-0ff1-ce00-000000000000", trusted_issuers="00000001-0000-0000-c000-000000000000@*"`, `Basic Realm=""`},
			`2000004;reason="issuer mismatch: actor iss 'x', want metadata issuer 'y'";error_category="invalid_token"`,
			func(c Challenge) bool {
				return c.ClientID == ExchangeID && len(c.TrustedIssuers) == 1 && c.TrustedIssuers[0] == "00000001-0000-0000-c000-000000000000@*" &&
					c.DiagCode == "2000004" && c.DiagCategory == "invalid_token" && strings.HasPrefix(c.DiagReason, "issuer mismatch")
			}},
		{"one header, two schemes, realm, escapes", []string{`Basic realm="x", Bearer realm="6e5b2c1a-3f4d-4c8e-9a1b-2c3d4e5f6a7b",client_id=00000002-0000-0ff1-ce00-000000000000, error="invalid_token", error_description="a \"quoted\" word"`}, "",
			func(c Challenge) bool {
				return c.Realm == "6e5b2c1a-3f4d-4c8e-9a1b-2c3d4e5f6a7b" && c.ClientID == ExchangeID && c.Error == "invalid_token" && c.ErrorDescription == `a "quoted" word`
			}},
		{"control characters cleaned", []string{"Bearer client_id=\"a\x1bb\""}, "1;reason=\"x\ny\"",
			func(c Challenge) bool { return c.ClientID == "a?b" && c.DiagReason == "x y" }},
		{"garbage", []string{`"=,,;Bearer`, "", "Bearer ==="}, ";;;=",
			func(c Challenge) bool { return c.ClientID == "" && c.DiagReason == "" }},
	}
	for _, tt := range tests {
		if c := ParseChallenge(tt.www, tt.diag); !tt.check(c) {
			t.Errorf("%s: ParseChallenge = %+v", tt.name, c)
		}
	}
}

func TestChallengeExplain(t *testing.T) {
	const ours = SharePointID + "@6e5b2c1a-3f4d-4c8e-9a1b-2c3d4e5f6a7b"
	tests := []struct {
		diag string
		want string
	}{
		{`2000006;reason="actor signed by an unknown certificate: x5t abc";error_category="invalid_signature"`, "-RefreshAuthMetadata"},
		{`2000004;reason="issuer mismatch";error_category="invalid_token"`, "Configure-EnterprisePartnerApplication.ps1"},
		{`2000001;reason="token outside its lifetime: nbf in the future";error_category="invalid_token"`, "s2s.clock_skew"},
		{`2000008;reason="partner metadata unavailable";error_category="invalid_resource"`, "s2s.public_url"},
		{``, "no Bearer challenge"},
	}
	for _, tt := range tests {
		got := strings.Join(ParseChallenge(nil, tt.diag).Explain(ours), "\n")
		if !strings.Contains(got, tt.want) {
			t.Errorf("Explain(%q) = %q, want %q", tt.diag, got, tt.want)
		}
	}
	c := ParseChallenge([]string{`Bearer client_id="00000002-0000-0ff1-ce00-000000000000", realm="11111111-1111-1111-1111-111111111111"`}, "")
	if got := strings.Join(c.Explain(ours), "\n"); !strings.Contains(got, "our own realm 6e5b2c1a") {
		t.Errorf("Explain realm = %q", got)
	}
}

func FuzzParseChallenge(f *testing.F) {
	f.Add(`Bearer client_id="00000002-0000-0ff1-ce00-000000000000", trusted_issuers="x@*"`, `2000004;reason="a";error_category="b"`)
	f.Add(`Basic realm="", Bearer realm=x,error="y`, `;`)
	f.Add("Bearer client_id=\"\u0442\x1b\"", "1;reason=\"\u2028\"") // non-ASCII and separators
	f.Fuzz(func(t *testing.T, www, diag string) {
		c := ParseChallenge([]string{www}, diag)
		_ = c.Explain("a@b")
		for _, s := range []string{c.ClientID, c.Realm, c.DiagReason, c.DiagCode} {
			// What untrusted.Text promises: one line of printable
			// characters, bounded.
			if utf8.RuneCountInString(s) > 301 || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
				t.Fatalf("unclean value %q", s)
			}
		}
	})
}
