package oauth

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"photosync/internal/testclock"
	"testing"
	"time"
)

// pairFrom makes a key pair whose certificate starts at notBefore.
func pairFrom(t *testing.T, notBefore time.Time) KeyPair {
	t.Helper()
	certPEM, keyPEM, err := generateKeyPair("photosync rotation", minKeyBits, notBefore, notBefore.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := pem.Decode(keyPEM)
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return KeyPair{Certificate: cert, Key: k.(*rsa.PrivateKey)}
}

func TestRotationPublishesAllSignsWithNewest(t *testing.T) {
	clock := testclock.New()
	base := clock.Now().Add(-24 * time.Hour)
	old, newest, middle := pairFrom(t, base), pairFrom(t, base.Add(2*time.Hour)), pairFrom(t, base.Add(time.Hour))
	tests := []struct {
		name     string
		primary  KeyPair
		rotation []KeyPair
		want     KeyPair
		keys     int
	}{
		{"no rotation", old, nil, old, 1},
		{"newest in rotation", old, []KeyPair{middle, newest}, newest, 3},
		{"primary is newest", newest, []KeyPair{old}, newest, 2},
		{"duplicate published once", old, []KeyPair{old, middle}, middle, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := newTestIssuer(t, clock, func(o *Options) {
				o.Certificate, o.Key, o.Rotation = tt.primary.Certificate, tt.primary.Key, tt.rotation
			})
			md := i.Metadata()
			if len(md.Keys) != tt.keys {
				t.Fatalf("metadata has %d keys, want %d", len(md.Keys), tt.keys)
			}
			tok, err := i.Token(context.Background(), "adele@contoso.com", "mail.contoso.com")
			if err != nil {
				t.Fatal(err)
			}
			d := decodeToken(t, tok, md)
			if got, want := d.actorHeader["x5t"], Thumbprint(tt.want.Certificate); got != want {
				t.Errorf("actor x5t = %v, want the newest certificate's %s", got, want)
			}
		})
	}
}

func TestClockSkew(t *testing.T) {
	clock := testclock.New()
	for _, skew := range []time.Duration{0, 2 * time.Minute, 15 * time.Minute} {
		i := newTestIssuer(t, clock, func(o *Options) { o.ClockSkew = skew })
		tok, err := i.Token(context.Background(), "adele@contoso.com", "mail.contoso.com")
		if err != nil {
			t.Fatal(err)
		}
		want := skew
		if want == 0 {
			want = DefaultClockSkew
		}
		d := decodeToken(t, tok, i.Metadata())
		nbf, _ := d.outer["nbf"].(float64)
		if got := clock.Now().Truncate(time.Second).Sub(time.Unix(int64(nbf), 0)); got != want {
			t.Errorf("ClockSkew %v: nbf is %v before now, want %v", skew, got, want)
		}
	}
	if _, err := New(Options{Certificate: pairFrom(t, clock.Now()).Certificate, Realm: testRealm, ClockSkew: -time.Second}); err == nil {
		t.Error("New accepted a negative ClockSkew")
	}
}

func TestRotationRejectsMismatchedPair(t *testing.T) {
	clock := testclock.New()
	a, b := pairFrom(t, clock.Now()), pairFrom(t, clock.Now())
	cert, key := newTestKeyPair(t)
	_, err := New(Options{Certificate: cert, Key: key, Realm: testRealm, Rotation: []KeyPair{{Certificate: a.Certificate, Key: b.Key}}})
	if err == nil {
		t.Fatal("New accepted a rotation pair whose key does not match")
	}
}
