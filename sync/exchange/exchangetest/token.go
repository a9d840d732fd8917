package exchangetest

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token rejections. ValidateToken wraps exactly one of them with the claim
// that failed and the expected and actual values; match with errors.Is.
var (
	ErrNoToken         = errors.New("no bearer token")
	ErrMalformedToken  = errors.New("malformed token")
	ErrTokenLifetime   = errors.New("token outside its lifetime")
	ErrAudience        = errors.New("audience mismatch")
	ErrIssuer          = errors.New("issuer mismatch")
	ErrNotDelegated    = errors.New("actor not trusted for delegation")
	ErrUnknownKey      = errors.New("actor signed by an unknown certificate")
	ErrSignature       = errors.New("actor signature invalid")
	ErrPartnerMetadata = errors.New("partner metadata unavailable")
	ErrNoActingUser    = errors.New("no acting user in token")
)

// diagCodes numbers the rejections in x-ms-diagnostics. Exchange's own codes
// are not documented; these are stable for photosync.
var diagCodes = []struct {
	err      error
	code     int
	category string
}{
	{ErrNoToken, 2000000, "invalid_request"},
	{ErrTokenLifetime, 2000001, "invalid_token"},
	{ErrMalformedToken, 2000002, "invalid_token"},
	{ErrAudience, 2000003, "invalid_token"},
	{ErrIssuer, 2000004, "invalid_token"},
	{ErrSignature, 2000005, "invalid_signature"},
	{ErrUnknownKey, 2000006, "invalid_signature"},
	{ErrNotDelegated, 2000007, "invalid_token"},
	{ErrPartnerMetadata, 2000008, "invalid_resource"},
	{ErrNoActingUser, 2000009, "invalid_user"},
}

// diagnostics renders err as an x-ms-diagnostics value,
// e.g. 2000001;reason="…";error_category="invalid_token".
func diagnostics(err error) string {
	code, cat := 2000099, "invalid_token"
	for _, d := range diagCodes {
		if errors.Is(err, d.err) {
			code, cat = d.code, d.category
			break
		}
	}
	reason := strings.NewReplacer(`"`, `'`, "\r", " ", "\n", " ").Replace(err.Error())
	return fmt.Sprintf(`%d;reason="%s";error_category="%s"`, code, reason, cat)
}

// metadataRefetch is how often an unknown x5t may cause a refetch of the
// partner metadata: that is how certificate rotation reaches the server.
const metadataRefetch = 30 * time.Second

// partnerMetadata is what the simulator keeps of the partner's document.
type partnerMetadata struct {
	issuer string
	realm  string
	certs  map[string]*x509.Certificate // by hex SHA-1 thumbprint
}

type metadataCache struct {
	mu        sync.Mutex
	doc       *partnerMetadata
	fetchedAt time.Time
}

func (c *metadataCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.doc, c.fetchedAt = nil, time.Time{}
}

// lookup returns the metadata and the certificate with thumbprint tp,
// fetching the document when none is cached, or when tp is unknown and the
// last fetch is at least metadataRefetch old. The lock is held across the
// fetch so concurrent validations fetch once.
func (s *Server) lookup(ctx context.Context, tp []byte) (*partnerMetadata, *x509.Certificate, error) {
	c := &s.meta
	c.mu.Lock()
	defer c.mu.Unlock()
	key := fmt.Sprintf("%x", tp)
	if c.doc != nil {
		if cert, ok := c.doc.certs[key]; ok {
			return c.doc, cert, nil
		}
		if s.now().Sub(c.fetchedAt) < metadataRefetch {
			return nil, nil, fmt.Errorf("%w: x5t %s is not in the partner metadata (refetched less than %s ago)", ErrUnknownKey, key, metadataRefetch)
		}
	}
	doc, err := s.fetchMetadata(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrPartnerMetadata, err)
	}
	c.doc, c.fetchedAt = doc, s.now()
	cert, ok := doc.certs[key]
	if !ok {
		return nil, nil, fmt.Errorf("%w: x5t %s is not in the partner metadata", ErrUnknownKey, key)
	}
	return doc, cert, nil
}

func (s *Server) fetchMetadata(ctx context.Context) (*partnerMetadata, error) {
	u := s.partnerMetadataURL()
	if u == "" {
		return nil, errors.New("no partner metadata url configured")
	}
	client := s.opts.MetadataClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("metadata request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching metadata: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading metadata: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching metadata: status %d", resp.StatusCode)
	}
	return parsePartnerMetadata(body)
}

// parsePartnerMetadata reads a metadata document leniently, as Exchange does:
// member names and the usage and type values are matched ignoring case,
// keyinfo and endpoints may be missing, and a missing realm is taken from
// the issuer after '@'.
func parsePartnerMetadata(body []byte) (*partnerMetadata, error) {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("metadata json: %w", err)
	}
	issuer, _ := member(raw, "issuer").(string)
	at := strings.LastIndexByte(issuer, '@')
	if at <= 0 || at == len(issuer)-1 {
		return nil, fmt.Errorf("metadata issuer %q is not <client id>@<realm>", issuer)
	}
	realm, _ := member(raw, "realm").(string)
	if realm == "" {
		realm = issuer[at+1:]
	}
	md := &partnerMetadata{issuer: issuer, realm: realm, certs: make(map[string]*x509.Certificate)}
	keys, _ := member(raw, "keys").([]any)
	for _, k := range keys {
		km, _ := k.(map[string]any)
		if usage, ok := member(km, "usage").(string); ok && !strings.EqualFold(usage, "signing") {
			continue
		}
		kv, _ := member(km, "keyvalue").(map[string]any)
		if typ, _ := member(kv, "type").(string); !strings.EqualFold(typ, "x509Certificate") {
			continue
		}
		val, _ := member(kv, "value").(string)
		der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(val), ""))
		if err != nil {
			return nil, fmt.Errorf("metadata certificate: %w", err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("metadata certificate: %w", err)
		}
		sum := sha1.Sum(der)
		md.certs[fmt.Sprintf("%x", sum)] = cert
	}
	if len(md.certs) == 0 {
		return nil, errors.New("metadata has no signing certificate")
	}
	return md, nil
}

// member returns m's value under name, matching the name ignoring case.
func member(m map[string]any, name string) any {
	if v, ok := m[name]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// decodeThumbprint accepts base64url without padding (what Microsoft's
// documentation shows) and padded standard base64 (seen in the wild).
func decodeThumbprint(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == sha1.Size {
			return b, nil
		}
	}
	return nil, fmt.Errorf("x5t %q is not a base64 SHA-1 thumbprint", s)
}

// ValidateToken checks the request's S2S user-context token as Exchange
// does ([MS-XOAUTH] 3.2.5.6, https://learn.microsoft.com/en-us/openspecs/exchange_server_protocols/ms-xoauth/) and returns the acting user,
// lower-cased. Every failure wraps one of the Err… variables.
func (s *Server) ValidateToken(r *http.Request) (actor string, err error) {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", fmt.Errorf("%w: want Authorization: Bearer <token>", ErrNoToken)
	}

	// Outer token: unsigned, alg none, three parts with an empty third.
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("%w: outer token has %d parts, want 3", ErrMalformedToken, len(parts))
	}
	if parts[2] != "" {
		return "", fmt.Errorf("%w: outer token has a signature part, want alg none with an empty signature", ErrMalformedToken)
	}
	var header map[string]any
	if err := decodeSegment(parts[0], &header); err != nil {
		return "", fmt.Errorf("%w: outer header: %w", ErrMalformedToken, err)
	}
	if alg, _ := header["alg"].(string); alg != "none" {
		return "", fmt.Errorf("%w: outer alg %q, want \"none\"", ErrMalformedToken, alg)
	}
	var outer map[string]any
	if err := decodeSegment(parts[1], &outer); err != nil {
		return "", fmt.Errorf("%w: outer claims: %w", ErrMalformedToken, err)
	}
	for _, c := range []string{"aud", "iss", "nbf", "exp", "actortoken"} {
		if _, ok := outer[c]; !ok {
			return "", fmt.Errorf("%w: outer token has no %s claim", ErrMalformedToken, c)
		}
	}
	actorToken, _ := outer["actortoken"].(string)
	if actorToken == "" {
		return "", fmt.Errorf("%w: outer actortoken is not a non-empty string", ErrMalformedToken)
	}

	// Actor token: RS256 only, signed by a certificate in the partner's
	// metadata, found by x5t.
	var md *partnerMetadata
	keyfunc := func(t *jwt.Token) (any, error) {
		x5t, _ := t.Header["x5t"].(string)
		if x5t == "" {
			return nil, fmt.Errorf("%w: actor header has no x5t", ErrUnknownKey)
		}
		tp, err := decodeThumbprint(x5t)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnknownKey, err)
		}
		doc, cert, err := s.lookup(r.Context(), tp)
		if err != nil {
			return nil, err
		}
		pub, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: certificate %x has no RSA key", ErrUnknownKey, tp)
		}
		md = doc
		return pub, nil
	}
	parsed, err := jwt.Parse(actorToken, keyfunc,
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithoutClaimsValidation(), // lifetimes are checked below, strings allowed
		jwt.WithJSONNumber())
	if err != nil {
		return "", actorError(err)
	}
	ac, ok := parsed.Claims.(jwt.MapClaims)
	if !ok {
		return "", fmt.Errorf("%w: actor claims", ErrMalformedToken)
	}

	// Issuer chain.
	aiss, _ := ac["iss"].(string)
	anameid, _ := ac["nameid"].(string)
	if aiss != md.issuer {
		return "", fmt.Errorf("%w: actor iss %q, want metadata issuer %q", ErrIssuer, aiss, md.issuer)
	}
	if anameid != md.issuer {
		return "", fmt.Errorf("%w: actor nameid %q, want metadata issuer %q", ErrIssuer, anameid, md.issuer)
	}
	if oiss, _ := outer["iss"].(string); oiss != anameid {
		return "", fmt.Errorf("%w: outer iss %q, want actor nameid %q", ErrIssuer, oiss, anameid)
	}
	if !isTrue(ac["trustedfordelegation"]) {
		return "", fmt.Errorf("%w: actor trustedfordelegation is %v, want \"true\" for a user call", ErrNotDelegated, ac["trustedfordelegation"])
	}

	// Audiences.
	for _, t := range []struct {
		name string
		aud  any
	}{{"actor", ac["aud"]}, {"outer", outer["aud"]}} {
		if err := checkAudience(t.name, t.aud, r.Host, md.realm); err != nil {
			return "", err
		}
	}

	// Lifetimes.
	now := s.now()
	for _, t := range []struct {
		name   string
		claims map[string]any
	}{{"actor", ac}, {"outer", outer}} {
		if err := s.checkLifetime(t.name, t.claims, now); err != nil {
			return "", err
		}
	}

	for _, c := range []string{"smtp", "upn", "nameid"} {
		if v, _ := outer[c].(string); v != "" {
			return strings.ToLower(v), nil
		}
	}
	return "", fmt.Errorf("%w: outer token has no smtp, upn or nameid", ErrNoActingUser)
}

// actorError maps a golang-jwt parse error onto our rejections, keeping
// errors the keyfunc returned.
func actorError(err error) error {
	for _, d := range diagCodes {
		if errors.Is(err, d.err) {
			return err
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return fmt.Errorf("%w: actor token: %w", ErrSignature, err)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return fmt.Errorf("%w: actor token: %w", ErrUnknownKey, err)
	default:
		return fmt.Errorf("%w: actor token: %w", ErrMalformedToken, err)
	}
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

func isTrue(v any) bool {
	switch t := v.(type) {
	case string:
		return strings.EqualFold(t, "true")
	case bool:
		return t
	}
	return false
}

// checkAudience wants 00000002-…/{host}@{realm}: client id and realm exact,
// host equal to the request's Host ignoring case. The host may carry the
// request's port or not: the aud names a host, and a default port is
// normally left out of Host.
func checkAudience(which string, v any, reqHost, realm string) error {
	aud, ok := v.(string)
	if arr, isArr := v.([]any); isArr && len(arr) == 1 {
		aud, ok = arr[0].(string)
	}
	if !ok || aud == "" {
		return fmt.Errorf("%w: %s aud is %v, want a string", ErrAudience, which, v)
	}
	want := ExchangeClientID + "/" + reqHost + "@" + realm
	clientID, rest, ok1 := strings.Cut(aud, "/")
	at := strings.LastIndexByte(rest, '@')
	if !ok1 || at < 0 {
		return fmt.Errorf("%w: %s aud %q, want %q", ErrAudience, which, aud, want)
	}
	host, audRealm := rest[:at], rest[at+1:]
	if clientID != ExchangeClientID {
		return fmt.Errorf("%w: %s aud client id %q, want %q", ErrAudience, which, clientID, ExchangeClientID)
	}
	if !sameHost(host, reqHost) {
		return fmt.Errorf("%w: %s aud host %q, want %q", ErrAudience, which, host, reqHost)
	}
	if audRealm != realm {
		return fmt.Errorf("%w: %s aud realm %q, want partner realm %q", ErrAudience, which, audRealm, realm)
	}
	return nil
}

func sameHost(audHost, reqHost string) bool {
	if strings.EqualFold(audHost, reqHost) {
		return true
	}
	h, _, err := net.SplitHostPort(reqHost)
	if err != nil {
		return false
	}
	return strings.EqualFold(strings.Trim(audHost, "[]"), h)
}

func (s *Server) checkLifetime(which string, claims map[string]any, now time.Time) error {
	exp, err := numericDate(claims["exp"])
	if err != nil {
		return fmt.Errorf("%w: %s exp: %w", ErrMalformedToken, which, err)
	}
	nbf, err := numericDate(claims["nbf"])
	if err != nil {
		return fmt.Errorf("%w: %s nbf: %w", ErrMalformedToken, which, err)
	}
	if !exp.After(now) {
		return fmt.Errorf("%w: %s token expired at %s, now %s", ErrTokenLifetime, which, exp.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if nbf.After(now.Add(s.skew)) {
		return fmt.Errorf("%w: %s token not valid before %s, now %s (skew %s)", ErrTokenLifetime, which, nbf.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), s.skew)
	}
	return nil
}

// numericDate reads epoch seconds given as a JSON number or a numeric string.
func numericDate(v any) (time.Time, error) {
	var str string
	switch t := v.(type) {
	case nil:
		return time.Time{}, errors.New("missing")
	case json.Number:
		str = t.String()
	case string:
		str = t
	case float64:
		str = strconv.FormatFloat(t, 'f', -1, 64)
	default:
		return time.Time{}, fmt.Errorf("%v is not a number", v)
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(str), 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a number", str)
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
}
