package oauth

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"photosync/internal/testclock"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testRealm = "6e5b2c1a-3f4d-4c8e-9a1b-2c3d4e5f6a7b"

func newTestIssuer(t *testing.T, clock *testclock.Clock, edit func(*Options)) *Issuer {
	t.Helper()
	cert, key := newTestKeyPair(t)
	opts := Options{Certificate: cert, Key: key, Realm: testRealm, Now: clock.Now}
	if edit != nil {
		edit(&opts)
	}
	i, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// decodedToken is a user-context token taken apart, its actor token verified.
type decodedToken struct {
	outerHeader map[string]any
	outer       map[string]any
	actorHeader map[string]any
	actor       jwt.MapClaims
}

// decodeToken splits an outer token, checks that it is unsigned, and
// verifies its actor token against the certificates in md, found by x5t.
func decodeToken(t *testing.T, tok string, md Metadata) decodedToken {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("outer token has %d parts, want 3", len(parts))
	}
	if parts[2] != "" {
		t.Fatalf("outer token signature = %q, want empty", parts[2])
	}
	var d decodedToken
	for n, dst := range []*map[string]any{&d.outerHeader, &d.outer} {
		b, err := base64.RawURLEncoding.DecodeString(parts[n])
		if err != nil {
			t.Fatalf("outer part %d: %v", n, err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatalf("outer part %d: %v", n, err)
		}
	}
	if got := fmt.Sprint(d.outerHeader); got != "map[alg:none typ:JWT]" {
		t.Fatalf("outer header = %s, want alg none, typ JWT", got)
	}
	actor, ok := d.outer["actortoken"].(string)
	if !ok {
		t.Fatalf("outer token has no actortoken string: %v", d.outer)
	}
	byX5T := map[string]*x509.Certificate{}
	for _, c := range md.Certificates() {
		byX5T[Thumbprint(c)] = c
	}
	parsed, err := jwt.Parse(actor, func(tk *jwt.Token) (any, error) {
		x5t, _ := tk.Header["x5t"].(string)
		c, ok := byX5T[x5t]
		if !ok {
			return nil, fmt.Errorf("no certificate with x5t %q", x5t)
		}
		return c.PublicKey, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())
	if err != nil {
		t.Fatalf("verifying actor token: %v", err)
	}
	d.actorHeader = parsed.Header
	d.actor = parsed.Claims.(jwt.MapClaims)
	return d
}

func TestTokenClaims(t *testing.T) {
	tests := []struct {
		name         string
		edit         func(*Options)
		user, host   string
		wantAud      string
		wantIss      string
		wantUser     string
		wantLifetime time.Duration
	}{
		{
			name: "defaults", user: "alice@contoso.com", host: "mail.contoso.com",
			wantAud:      ExchangeID + "/mail.contoso.com@" + testRealm,
			wantIss:      SharePointID + "@" + testRealm,
			wantUser:     "alice@contoso.com",
			wantLifetime: time.Hour,
		},
		{
			name: "mixed case and port", user: " Bob.Smith@Contoso.COM ", host: "Mail.Contoso.com:8443",
			edit:         func(o *Options) { o.Realm = strings.ToUpper(testRealm) },
			wantAud:      ExchangeID + "/mail.contoso.com:8443@" + testRealm,
			wantIss:      SharePointID + "@" + testRealm,
			wantUser:     "bob.smith@contoso.com",
			wantLifetime: time.Hour,
		},
		{
			name: "ipv6 host, own client id and lifetime", user: "c@x.org", host: "[::1]:443",
			edit: func(o *Options) {
				o.ClientID = "11111111-2222-3333-4444-AAAAAAAAAAAA"
				o.Lifetime = 2 * time.Hour
			},
			wantAud:      ExchangeID + "/[::1]:443@" + testRealm,
			wantIss:      "11111111-2222-3333-4444-aaaaaaaaaaaa@" + testRealm,
			wantUser:     "c@x.org",
			wantLifetime: 2 * time.Hour,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := testclock.New()
			i := newTestIssuer(t, clock, tt.edit)
			if got := i.Issuer(); got != tt.wantIss {
				t.Errorf("Issuer() = %q, want %q", got, tt.wantIss)
			}
			tok, err := i.Token(context.Background(), tt.user, tt.host)
			if err != nil {
				t.Fatal(err)
			}
			d := decodeToken(t, tok, i.Metadata())
			now := clock.Now()
			wantNBF := float64(now.Add(-5 * time.Minute).Unix())
			wantEXP := float64(now.Add(tt.wantLifetime).Unix())

			wantOuter := map[string]any{
				"aud": tt.wantAud, "iss": tt.wantIss, "nbf": wantNBF, "exp": wantEXP,
				"nameid": tt.wantUser, "nii": "urn:office:idp:activedirectory",
				"upn": tt.wantUser, "smtp": tt.wantUser,
			}
			for k, want := range wantOuter {
				if got := d.outer[k]; got != want {
					t.Errorf("outer %s = %#v, want %#v", k, got, want)
				}
			}
			if len(d.outer) != len(wantOuter)+1 { // + actortoken
				t.Errorf("outer claims = %v, want exactly %v and actortoken", d.outer, wantOuter)
			}

			wantHeader := map[string]any{"typ": "JWT", "alg": "RS256", "x5t": Thumbprint(i.cert)}
			for k, want := range wantHeader {
				if got := d.actorHeader[k]; got != want {
					t.Errorf("actor header %s = %#v, want %#v", k, got, want)
				}
			}
			wantActor := map[string]any{
				"aud": tt.wantAud, "iss": tt.wantIss, "nameid": tt.wantIss,
				"nbf": wantNBF, "exp": wantEXP, "trustedfordelegation": "true",
			}
			for k, want := range wantActor {
				if got := d.actor[k]; got != want {
					t.Errorf("actor %s = %#v, want %#v", k, got, want)
				}
			}
			if len(d.actor) != len(wantActor) {
				t.Errorf("actor claims = %v, want exactly %v", d.actor, wantActor)
			}
			if d.outer["iss"] != d.actor["nameid"] {
				t.Errorf("outer iss %v != actor nameid %v", d.outer["iss"], d.actor["nameid"])
			}
		})
	}
}

func TestTokenCache(t *testing.T) {
	clock := testclock.New()
	i := newTestIssuer(t, clock, nil)
	ctx := context.Background()
	token := func(user, host string) string {
		t.Helper()
		tok, err := i.Token(ctx, user, host)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	first := token("alice@contoso.com", "mail.contoso.com")
	if again := token("Alice@Contoso.com", "MAIL.contoso.com"); again != first {
		t.Error("second call for the same user and host minted a new token")
	}
	others := map[string]string{
		"other user": token("bob@contoso.com", "mail.contoso.com"),
		"other host": token("alice@contoso.com", "mail2.contoso.com"),
		"other port": token("alice@contoso.com", "mail.contoso.com:444"),
	}
	for name, tok := range others {
		if tok == first {
			t.Errorf("%s got the same token", name)
		}
	}

	// Reused until 5 minutes before exp (exp = now + 1h).
	clock.Advance(55*time.Minute - time.Second)
	if got := token("alice@contoso.com", "mail.contoso.com"); got != first {
		t.Error("token renewed before exp-5m")
	}
	clock.Advance(time.Second)
	renewed := token("alice@contoso.com", "mail.contoso.com")
	if renewed == first {
		t.Fatal("token not renewed at exp-5m")
	}
	d := decodeToken(t, renewed, i.Metadata())
	if want := float64(clock.Now().Add(time.Hour).Unix()); d.outer["exp"] != want {
		t.Errorf("renewed exp = %v, want %v", d.outer["exp"], want)
	}
	if got := token("alice@contoso.com", "mail.contoso.com"); got != renewed {
		t.Error("renewed token not cached")
	}

	// A token minted at the same second is byte-identical (RS256 is
	// deterministic), so let a second pass before asking again.
	clock.Advance(time.Second)
	i.Forget("ALICE@contoso.com", "mail.contoso.com")
	if got := token("alice@contoso.com", "mail.contoso.com"); got == renewed {
		t.Error("Forget did not drop the cached token")
	}
	// Minted: first, the three others, renewed, after Forget; the rest hit.
	if hits, misses := i.CacheCounts(); hits != 3 || misses != 6 {
		t.Errorf("cache counts: %d hits, %d misses; want 3, 6", hits, misses)
	}
}

func TestTokenCacheBounded(t *testing.T) {
	clock := testclock.New()
	i := newTestIssuer(t, clock, func(o *Options) { o.CacheSize = 3 })
	for n := range 10 {
		if _, err := i.Token(context.Background(), fmt.Sprintf("u%d@contoso.com", n), "mail.contoso.com"); err != nil {
			t.Fatal(err)
		}
		i.mu.RLock()
		size := len(i.tokens)
		i.mu.RUnlock()
		if size > 3 {
			t.Fatalf("after %d users the cache holds %d tokens, want at most 3", n+1, size)
		}
	}
}

// TestTokenCachePrunesAnEighth: a full cache frees an eighth of itself at
// once, so it is walked once per eighth of new people, not once per person.
func TestTokenCachePrunesAnEighth(t *testing.T) {
	i := newTestIssuer(t, testclock.New(), func(o *Options) { o.CacheSize = 16 })
	for n := range 17 {
		if _, err := i.Token(context.Background(), fmt.Sprintf("u%d@contoso.com", n), "mail.contoso.com"); err != nil {
			t.Fatal(err)
		}
	}
	i.mu.RLock()
	defer i.mu.RUnlock()
	if got := len(i.tokens); got != 15 {
		t.Errorf("after 17 users a cache of 16 holds %d tokens, want 15 (14 kept, then the 17th)", got)
	}
}

func TestTokenConcurrent(t *testing.T) {
	clock := testclock.New()
	i := newTestIssuer(t, clock, nil)
	users := []string{"a@contoso.com", "b@contoso.com", "c@contoso.com"}
	const workers, calls = 8, 10
	got := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for n := range calls {
				tok, err := i.Token(context.Background(), users[(w+n)%len(users)], "mail.contoso.com")
				if err != nil {
					t.Error(err)
					return
				}
				got[w] = append(got[w], tok)
			}
		})
	}
	wg.Wait()
	seen := map[string]string{} // user → token
	for w := range workers {
		for n, tok := range got[w] {
			u := users[(w+n)%len(users)]
			if prev, ok := seen[u]; ok && prev != tok {
				t.Fatalf("user %s got two different tokens", u)
			}
			seen[u] = tok
		}
	}
	if len(seen) != len(users) {
		t.Errorf("tokens for %d users, want %d", len(seen), len(users))
	}
}

func TestTokenRejectsBadInput(t *testing.T) {
	i := newTestIssuer(t, testclock.New(), nil)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name       string
		ctx        context.Context
		user, host string
	}{
		{"empty user", context.Background(), "", "mail.contoso.com"},
		{"user without domain", context.Background(), "alice", "mail.contoso.com"},
		{"user with two @", context.Background(), "a@b@c", "mail.contoso.com"},
		{"user with space", context.Background(), "al ice@contoso.com", "mail.contoso.com"},
		{"empty host", context.Background(), "alice@contoso.com", ""},
		{"host with path", context.Background(), "alice@contoso.com", "mail.contoso.com/ews"},
		{"host with userinfo", context.Background(), "alice@contoso.com", "x@mail.contoso.com"},
		{"canceled", canceled, "alice@contoso.com", "mail.contoso.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := i.Token(tt.ctx, tt.user, tt.host)
			if err == nil {
				t.Fatalf("Token(%q, %q) = %q, want error", tt.user, tt.host, tok)
			}
			if !strings.HasPrefix(err.Error(), "oauth: minting token: ") {
				t.Errorf("error %q lacks the step", err)
			}
		})
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	cert, key := newTestKeyPair(t)
	_, otherKey := newTestKeyPair(t)
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"no certificate", Options{Key: key, Realm: testRealm}, "certificate is required"},
		{"no key", Options{Certificate: cert, Realm: testRealm}, "key is required"},
		{"mismatched key", Options{Certificate: cert, Key: otherKey, Realm: testRealm}, "does not match"},
		{"no realm", Options{Certificate: cert, Key: key}, "realm"},
		{"realm not a guid", Options{Certificate: cert, Key: key, Realm: "contoso.com"}, "realm"},
		{"client id not a guid", Options{Certificate: cert, Key: key, Realm: testRealm, ClientID: "sharepoint"}, "client id"},
		{"lifetime too short", Options{Certificate: cert, Key: key, Realm: testRealm, Lifetime: 5 * time.Minute}, "lifetime"},
		{"negative cache size", Options{Certificate: cert, Key: key, Realm: testRealm, CacheSize: -1}, "cache size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New() error = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

// newTestKeyPair generates a fresh certificate and key, valid from
// DefaultClockSkew ago as GenerateKeyPair makes them.
func newTestKeyPair(t *testing.T) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	p := pairFrom(t, time.Now().Add(-DefaultClockSkew))
	return p.Certificate, p.Key
}

// TestActorTokenPerHost: the signed actor token names no user, so every
// user's token for one host carries the same one, and expires with it; it
// is signed again for another host, after Forget, and when due.
func TestActorTokenPerHost(t *testing.T) {
	clock := testclock.New()
	i := newTestIssuer(t, clock, nil)
	ctx := context.Background()
	decoded := func(user, host string) decodedToken {
		t.Helper()
		tok, err := i.Token(ctx, user, host)
		if err != nil {
			t.Fatal(err)
		}
		return decodeToken(t, tok, i.Metadata())
	}
	alice := decoded("alice@contoso.com", "mail.contoso.com")
	clock.Advance(30 * time.Minute)
	bob := decoded("bob@contoso.com", "mail.contoso.com")
	if alice.outer["actortoken"] != bob.outer["actortoken"] {
		t.Error("two users of one host got actor tokens of their own")
	}
	if bob.outer["exp"] != alice.outer["exp"] || bob.outer["nbf"] != alice.outer["nbf"] {
		t.Errorf("bob's token nbf %v exp %v, want the actor's, %v and %v", bob.outer["nbf"], bob.outer["exp"], alice.outer["nbf"], alice.outer["exp"])
	}
	if bob.outer["nameid"] != "bob@contoso.com" || bob.outer["smtp"] != "bob@contoso.com" {
		t.Errorf("bob's token names %v", bob.outer["nameid"])
	}
	if other := decoded("alice@contoso.com", "mail2.contoso.com"); other.outer["actortoken"] == alice.outer["actortoken"] {
		t.Error("another host got the same actor token")
	}
	clock.Advance(time.Second) // RS256 is deterministic: another second, another token
	i.Forget("bob@contoso.com", "mail.contoso.com")
	carol := decoded("carol@contoso.com", "mail.contoso.com")
	if carol.outer["actortoken"] == alice.outer["actortoken"] {
		t.Error("Forget kept the host's actor token")
	}
	// Due five minutes before its exp (now+1h): a user minted then gets a
	// fresh actor token, valid for the whole lifetime.
	clock.Advance(55 * time.Minute)
	dave := decoded("dave@contoso.com", "mail.contoso.com")
	if dave.outer["actortoken"] == carol.outer["actortoken"] {
		t.Error("actor token not renewed at exp-5m")
	}
	if want := float64(clock.Now().Add(time.Hour).Unix()); dave.outer["exp"] != want {
		t.Errorf("renewed exp = %v, want %v", dave.outer["exp"], want)
	}
}
