package oauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// writeFile writes data to name in dir and returns the path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// ecdsaPair returns a self-signed ECDSA certificate and its PKCS#8 key, PEM.
func ecdsaPair(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ec"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
}

func TestLoadKeyPair(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	certPEM, keyPEM, err := GenerateKeyPair("photosync", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, otherKeyPEM, err := GenerateKeyPair("other", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	shortCert, shortKey, err := generateKeyPair("short", 1024, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ecCert, ecKey := ecdsaPair(t)

	kb, _ := pem.Decode(keyPEM)
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1PEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.(*rsa.PrivateKey))})
	ecParams := []byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n")

	files := map[string]string{
		"cert":        writeFile(t, dir, "cert.pem", certPEM),
		"chain":       writeFile(t, dir, "chain.pem", append(append([]byte("junk\n"), certPEM...), certPEM...)),
		"pkcs8":       writeFile(t, dir, "key.pem", keyPEM),
		"pkcs1":       writeFile(t, dir, "key1.pem", pkcs1PEM),
		"paramsfirst": writeFile(t, dir, "keyp.pem", append(append([]byte{}, ecParams...), keyPEM...)),
		"otherkey":    writeFile(t, dir, "other.pem", otherKeyPEM),
		"shortcert":   writeFile(t, dir, "short.crt", shortCert),
		"shortkey":    writeFile(t, dir, "short.key", shortKey),
		"eccert":      writeFile(t, dir, "ec.crt", ecCert),
		"eckey":       writeFile(t, dir, "ec.key", ecKey),
		"sec1":        writeFile(t, dir, "sec1.key", []byte(strings.Replace(string(ecKey), "PRIVATE KEY", "EC PRIVATE KEY", 2))),
		"encrypted":   writeFile(t, dir, "enc.key", []byte(strings.Replace(string(keyPEM), "PRIVATE KEY", "ENCRYPTED PRIVATE KEY", 2))),
		"nopem":       writeFile(t, dir, "empty.pem", []byte("not pem at all\n")),
		"keyascert":   writeFile(t, dir, "keyascert.pem", keyPEM),
		"badder":      writeFile(t, dir, "bad.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("nope")})),
		"missing":     filepath.Join(dir, "missing.pem"),
	}

	tests := []struct {
		name          string
		cert, key     string
		now           time.Time
		wantErr       string // "" = success
		wantErrInFile string // the file the error must name
	}{
		{name: "pkcs8", cert: "cert", key: "pkcs8", now: now},
		{name: "pkcs1", cert: "cert", key: "pkcs1", now: now},
		{name: "chain and junk", cert: "chain", key: "pkcs8", now: now},
		{name: "parameters before key", cert: "cert", key: "paramsfirst", now: now},
		{name: "missing cert file", cert: "missing", key: "pkcs8", now: now, wantErr: "no such file", wantErrInFile: "missing"},
		{name: "missing key file", cert: "cert", key: "missing", now: now, wantErr: "no such file", wantErrInFile: "missing"},
		{name: "no pem in cert", cert: "nopem", key: "pkcs8", now: now, wantErr: "no CERTIFICATE PEM block", wantErrInFile: "nopem"},
		{name: "key file as cert", cert: "keyascert", key: "pkcs8", now: now, wantErr: "no CERTIFICATE PEM block", wantErrInFile: "keyascert"},
		{name: "no pem in key", cert: "cert", key: "nopem", now: now, wantErr: "no PRIVATE KEY PEM block", wantErrInFile: "nopem"},
		{name: "bad der", cert: "badder", key: "pkcs8", now: now, wantErr: "parsing certificate", wantErrInFile: "badder"},
		{name: "ecdsa certificate", cert: "eccert", key: "eckey", now: now, wantErr: "not RSA", wantErrInFile: "eccert"},
		{name: "ecdsa pkcs8 key", cert: "cert", key: "eckey", now: now, wantErr: "not RSA", wantErrInFile: "eckey"},
		{name: "sec1 key", cert: "cert", key: "sec1", now: now, wantErr: "EC PRIVATE KEY block is not an RSA key", wantErrInFile: "sec1"},
		{name: "encrypted key", cert: "cert", key: "encrypted", now: now, wantErr: "encrypted keys are not supported", wantErrInFile: "encrypted"},
		{name: "short key", cert: "shortcert", key: "shortkey", now: now, wantErr: "1024 bits is too short", wantErrInFile: "shortkey"},
		{name: "mismatch", cert: "cert", key: "otherkey", now: now, wantErr: "does not match", wantErrInFile: "otherkey"},
		{name: "expired", cert: "cert", key: "pkcs8", now: now.Add(25 * time.Hour), wantErr: "certificate expired", wantErrInFile: "cert"},
		{name: "not yet valid", cert: "cert", key: "pkcs8", now: now.Add(-time.Hour), wantErr: "not valid until", wantErrInFile: "cert"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, key, err := loadKeyPair(files[tt.cert], files[tt.key], tt.now)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !key.PublicKey.Equal(cert.PublicKey) || cert.Subject.CommonName != "photosync" {
					t.Errorf("loaded %v with a key that does not match", cert.Subject)
				}
				return
			}
			if err == nil {
				t.Fatalf("loadKeyPair() succeeded, want error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), files[tt.wantErrInFile]) {
				t.Errorf("error %q does not name file %s", err, files[tt.wantErrInFile])
			}
		})
	}
}

func TestLoadKeyPairNow(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, err := GenerateKeyPair("photosync", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := LoadKeyPair(writeFile(t, dir, "c.pem", certPEM), writeFile(t, dir, "k.pem", keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Certificate: cert, Key: key, Realm: NewRealm()}); err != nil {
		t.Errorf("New with a loaded pair: %v", err)
	}
}

func TestGenerateKeyPairRejects(t *testing.T) {
	tests := []struct {
		name     string
		cn       string
		validFor time.Duration
	}{
		{"empty common name", "", time.Hour},
		{"zero validity", "x", 0},
		{"negative validity", "x", -time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := GenerateKeyPair(tt.cn, tt.validFor); err == nil {
				t.Error("GenerateKeyPair succeeded, want error")
			}
		})
	}
}

func TestNewRealm(t *testing.T) {
	v4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := NewRealm(), NewRealm()
	for _, r := range []string{a, b} {
		if !v4.MatchString(r) {
			t.Errorf("NewRealm() = %q, want a lower-case v4 GUID", r)
		}
	}
	if a == b {
		t.Errorf("NewRealm() returned %q twice", a)
	}
}

func TestThumbprint(t *testing.T) {
	// SHA-1("abc") = a9993e36…, whose base64url has '-' and no padding.
	if got, want := Thumbprint(&x509.Certificate{Raw: []byte("abc")}), "qZk-NkcGgWq6PiVxeFDCbJzQ2J0"; got != want {
		t.Errorf("Thumbprint = %q, want %q", got, want)
	}
}
