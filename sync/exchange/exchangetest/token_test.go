package exchangetest

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestValidateToken(t *testing.T) {
	f := newFixture(t)
	host := f.s.Host()
	other := newSigner(t)
	sameX5t := newSigner(t) // a different key presented under the partner's x5t
	hostOnly := host[:strings.LastIndexByte(host, ':')]
	port := host[len(hostOnly):]

	setAud := func(aud string) func(*mintSpec) {
		return func(sp *mintSpec) { sp.actor["aud"], sp.outer["aud"] = aud, aud }
	}
	tests := []struct {
		name    string
		raw     string // Authorization header; empty: mint with edit
		reqHost string // request Host; empty: the server's
		edit    func(*mintSpec)
		wantErr error
	}{
		{name: "valid"},
		{name: "numeric strings for nbf and exp", edit: func(sp *mintSpec) {
			for _, c := range []map[string]any{sp.actor, sp.outer} {
				c["nbf"] = strconv.FormatInt(t0.Add(-time.Minute).Unix(), 10)
				c["exp"] = strconv.FormatInt(t0.Add(time.Minute).Unix(), 10)
			}
		}},
		{name: "padded standard base64 x5t", edit: func(sp *mintSpec) {
			b, _ := base64.RawURLEncoding.DecodeString(f.p.x5t())
			sp.actorHeader["x5t"] = base64.StdEncoding.EncodeToString(b)
		}},
		{name: "aud names localhost, request 127.0.0.1", edit: setAud(ExchangeClientID + "/localhost" + port + "@" + testRealm), wantErr: ErrAudience},
		{name: "aud host in other case", reqHost: "LocalHost" + port, edit: setAud(ExchangeClientID + "/LOCALHOST" + port + "@" + testRealm)},
		{name: "aud host without port", edit: setAud(ExchangeClientID + "/" + hostOnly + "@" + testRealm)},
		{name: "nbf within skew", edit: func(sp *mintSpec) { sp.outer["nbf"] = t0.Add(4 * time.Minute).Unix() }},
		{name: "no authorization", raw: "-", wantErr: ErrNoToken},
		{name: "basic scheme", raw: "Basic dXNlcjpwYXNz", wantErr: ErrNoToken},
		{name: "expired outer", edit: func(sp *mintSpec) { sp.outer["exp"] = t0.Unix() }, wantErr: ErrTokenLifetime},
		{name: "expired actor", edit: func(sp *mintSpec) { sp.actor["exp"] = t0.Add(-time.Second).Unix() }, wantErr: ErrTokenLifetime},
		{name: "outer nbf beyond skew", edit: func(sp *mintSpec) { sp.outer["nbf"] = t0.Add(6 * time.Minute).Unix() }, wantErr: ErrTokenLifetime},
		{name: "actor nbf beyond skew", edit: func(sp *mintSpec) { sp.actor["nbf"] = t0.Add(6 * time.Minute).Unix() }, wantErr: ErrTokenLifetime},
		{name: "exp not a number", edit: func(sp *mintSpec) { sp.outer["exp"] = "soon" }, wantErr: ErrMalformedToken},
		{name: "aud other host", edit: setAud(ExchangeClientID + "/mail.contoso.com@" + testRealm), wantErr: ErrAudience},
		{name: "aud other realm", edit: setAud(ExchangeClientID + "/" + host + "@11111111-2222-3333-4444-555555555555"), wantErr: ErrAudience},
		{name: "aud realm in other case", edit: setAud(ExchangeClientID + "/" + host + "@" + strings.ToUpper(testRealm)), wantErr: ErrAudience},
		{name: "aud wrong client id", edit: setAud(spID + "/" + host + "@" + testRealm), wantErr: ErrAudience},
		{name: "outer aud only wrong", edit: func(sp *mintSpec) { sp.outer["aud"] = ExchangeClientID + "/evil.example@" + testRealm }, wantErr: ErrAudience},
		{name: "actor aud only wrong", edit: func(sp *mintSpec) { sp.actor["aud"] = ExchangeClientID + "/evil.example@" + testRealm }, wantErr: ErrAudience},
		{name: "signed by another key with the same x5t", edit: func(sp *mintSpec) { sp.key = sameX5t.key }, wantErr: ErrSignature},
		{name: "unknown x5t", edit: func(sp *mintSpec) { sp.key, sp.actorHeader["x5t"] = other.key, other.x5t() }, wantErr: ErrUnknownKey},
		{name: "no x5t", edit: func(sp *mintSpec) { sp.actorHeader["x5t"] = nil }, wantErr: ErrUnknownKey},
		{name: "alg none actor", edit: func(sp *mintSpec) {
			sp.method, sp.key = jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType
		}, wantErr: ErrSignature},
		{name: "HS256 actor", edit: func(sp *mintSpec) { sp.method, sp.key = jwt.SigningMethodHS256, []byte("secret") }, wantErr: ErrSignature},
		{name: "outer iss differs from actor nameid", edit: func(sp *mintSpec) { sp.outer["iss"] = spID + "@11111111-2222-3333-4444-555555555555" }, wantErr: ErrIssuer},
		{name: "outer iss differs in case", edit: func(sp *mintSpec) { sp.outer["iss"] = strings.ToUpper(f.p.issuer) }, wantErr: ErrIssuer},
		{name: "actor iss not the metadata issuer", edit: func(sp *mintSpec) { sp.actor["iss"] = ExchangeClientID + "@" + testRealm }, wantErr: ErrIssuer},
		{name: "actor nameid not the metadata issuer", edit: func(sp *mintSpec) {
			sp.actor["nameid"] = ExchangeClientID + "@" + testRealm
			sp.outer["iss"] = ExchangeClientID + "@" + testRealm
		}, wantErr: ErrIssuer},
		{name: "not trusted for delegation", edit: func(sp *mintSpec) { delete(sp.actor, "trustedfordelegation") }, wantErr: ErrNotDelegated},
		{name: "outer with a signature part", edit: func(sp *mintSpec) { sp.outerSig = "c2lnbmF0dXJl" }, wantErr: ErrMalformedToken},
		{name: "outer alg RS256", edit: func(sp *mintSpec) { sp.outerHeader["alg"] = "RS256" }, wantErr: ErrMalformedToken},
		{name: "missing actortoken", edit: func(sp *mintSpec) { sp.noActor = true }, wantErr: ErrMalformedToken},
		{name: "missing outer exp", edit: func(sp *mintSpec) { delete(sp.outer, "exp") }, wantErr: ErrMalformedToken},
		{name: "two parts", raw: "Bearer a.b", wantErr: ErrMalformedToken},
		{name: "no acting user", edit: func(sp *mintSpec) {
			delete(sp.outer, "smtp")
			delete(sp.outer, "upn")
			delete(sp.outer, "nameid")
		}, wantErr: ErrNoActingUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "https://"+host+photoPath, nil)
			if tt.reqHost != "" {
				r.Host = tt.reqHost
			}
			switch tt.raw {
			case "":
				r.Header.Set("Authorization", "Bearer "+f.p.mint(t, host, "Alice@Contoso.com", tt.edit))
			case "-":
			default:
				r.Header.Set("Authorization", tt.raw)
			}
			actor, err := f.s.ValidateToken(r)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("ValidateToken: %v", err)
				}
				if actor != "alice@contoso.com" {
					t.Errorf("actor = %q, want alice@contoso.com", actor)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ValidateToken error = %v, want %v", err, tt.wantErr)
			}
			if !strings.HasPrefix(diagnostics(err), "20000") {
				t.Errorf("diagnostics(%v) = %q", err, diagnostics(err))
			}
		})
	}
	if n := f.p.fetchCount(); n != 1 {
		t.Errorf("partner metadata fetched %d times, want 1 (cached; unknown x5t within 30s)", n)
	}
}

func TestMetadataRotation(t *testing.T) {
	f := newFixture(t)
	next := newSigner(t)
	req := func(edit func(*mintSpec)) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "https://"+f.s.Host()+photoPath, nil)
		r.Header.Set("Authorization", "Bearer "+f.p.mint(t, f.s.Host(), "alice@contoso.com", edit))
		return r
	}
	useNext := func(sp *mintSpec) { sp.key, sp.actorHeader["x5t"] = next.key, next.x5t() }

	if _, err := f.s.ValidateToken(req(nil)); err != nil {
		t.Fatalf("old certificate: %v", err)
	}
	f.p.publish(f.p.der, next.der)
	if _, err := f.s.ValidateToken(req(useNext)); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("new certificate before the refetch window: err = %v, want ErrUnknownKey", err)
	}
	f.clock.Advance(metadataRefetch)
	if _, err := f.s.ValidateToken(req(useNext)); err != nil {
		t.Fatalf("new certificate after the refetch window: %v", err)
	}
	if n := f.p.fetchCount(); n != 2 {
		t.Errorf("metadata fetched %d times, want 2", n)
	}
	f.s.SetPartnerMetadataURL("")
	if _, err := f.s.ValidateToken(req(nil)); !errors.Is(err, ErrPartnerMetadata) {
		t.Errorf("no partner url: err = %v, want ErrPartnerMetadata", err)
	}
}

func TestParsePartnerMetadata(t *testing.T) {
	der := newSigner(t).der
	val := base64.StdEncoding.EncodeToString(der)
	tests := []struct {
		name, doc, wantRealm string
		wantErr              bool
	}{
		{"exchange style", `{"realm":"r1","issuer":"x@r1","keys":[{"usage":"signing","keyinfo":{"x5t":"a"},"keyvalue":{"type":"x509Certificate","value":"` + val + `"}}]}`, "r1", false},
		{"sharepoint style", `{"issuer":"x@r2","keys":[{"keyValue":{"type":"x509certificate","value":"` + val + `"},"usage":"Signing"}]}`, "r2", false},
		{"encryption key only", `{"issuer":"x@r2","keys":[{"keyValue":{"type":"x509certificate","value":"` + val + `"},"usage":"encryption"}]}`, "", true},
		{"issuer without realm", `{"issuer":"x","keys":[{"keyValue":{"type":"x509certificate","value":"` + val + `"}}]}`, "", true},
		{"not json", `<xml/>`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md, err := parsePartnerMetadata([]byte(tt.doc))
			if tt.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if md.realm != tt.wantRealm || len(md.certs) != 1 {
				t.Errorf("realm %q, %d certs; want %q, 1", md.realm, len(md.certs), tt.wantRealm)
			}
		})
	}
}

func TestChallenge(t *testing.T) {
	tests := []struct {
		name, realm, token, wantDiag string
	}{
		{name: "no token", wantDiag: "2000000;"},
		{name: "expired", token: "expired", wantDiag: `2000001;reason="token outside its lifetime: `},
		{name: "test realm", realm: testRealm, wantDiag: "2000000;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixtureWith(t, func(o *Options) { o.ChallengeRealm = tt.realm })
			tok := ""
			if tt.token == "expired" {
				tok = f.p.mint(t, f.s.Host(), "alice@contoso.com", func(sp *mintSpec) { sp.outer["exp"] = t0.Add(-time.Hour).Unix() })
			}
			resp, _ := f.do(t, http.MethodGet, photoPathFor("alice@contoso.com", "HR96x96"), tok, nil, "")
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
			bearer := resp.Header.Values("WWW-Authenticate")[0]
			want := `Bearer client_id="00000002-0000-0ff1-ce00-000000000000", trusted_issuers="00000001-0000-0000-c000-000000000000@*"`
			if tt.realm != "" {
				want += `, realm="` + tt.realm + `"`
			}
			if bearer != want {
				t.Errorf("challenge %q, want %q", bearer, want)
			}
			if d := resp.Header.Get("x-ms-diagnostics"); !strings.HasPrefix(d, tt.wantDiag) || !strings.HasSuffix(d, `error_category="`+categoryOf(d)+`"`) {
				t.Errorf("x-ms-diagnostics %q, want prefix %q", d, tt.wantDiag)
			}
			reqs := f.s.Requests()
			if len(reqs) != 1 || reqs[0].TokenError == "" || reqs[0].Status != http.StatusUnauthorized {
				t.Errorf("request log %+v, want one 401 with a token error", reqs)
			}
		})
	}
}

func categoryOf(diag string) string {
	_, c, _ := strings.Cut(diag, `error_category="`)
	return strings.TrimSuffix(c, `"`)
}

func TestDecodeThumbprint(t *testing.T) {
	raw, _ := hex.DecodeString("00112233445566778899aabbccddeeff00112233")
	for _, s := range []string{
		base64.RawURLEncoding.EncodeToString(raw), base64.URLEncoding.EncodeToString(raw),
		base64.StdEncoding.EncodeToString(raw), base64.RawStdEncoding.EncodeToString(raw),
	} {
		got, err := decodeThumbprint(s)
		if err != nil || hex.EncodeToString(got) != hex.EncodeToString(raw) {
			t.Errorf("decodeThumbprint(%q) = %x, %v", s, got, err)
		}
	}
	if _, err := decodeThumbprint("c2hvcnQ"); err == nil {
		t.Error("a 5-byte x5t was accepted")
	}
}
