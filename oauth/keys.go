package oauth

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"
)

// minKeyBits is the smallest RSA key LoadKeyPair accepts.
const minKeyBits = 2048

// LoadKeyPair reads our certificate and its RSA private key from PEM files.
// The certificate file's first CERTIFICATE block is used; the key may be
// PKCS#1 ("RSA PRIVATE KEY") or PKCS#8 ("PRIVATE KEY"), unencrypted. It fails
// with an error naming the file when a file holds no PEM block, the key is
// not RSA or is shorter than 2048 bits, the key does not match the
// certificate, or the certificate is expired or not yet valid.
func LoadKeyPair(certFile, keyFile string) (*x509.Certificate, *rsa.PrivateKey, error) {
	return loadKeyPair(certFile, keyFile, time.Now())
}

// A KeyPairError is LoadKeyPair's error: which file is at fault, the
// certificate's or the key's, so a caller can name its own setting.
type KeyPairError struct {
	File string
	Key  bool // the key file; false: the certificate file
	Err  error
}

func (e *KeyPairError) Error() string {
	what := "certificate"
	if e.Key {
		what = "key"
	}
	return fmt.Sprintf("oauth: loading %s %s: %v", what, e.File, e.Err)
}

func (e *KeyPairError) Unwrap() error { return e.Err }

func loadKeyPair(certFile, keyFile string, now time.Time) (*x509.Certificate, *rsa.PrivateKey, error) {
	cert, err := loadCertificate(certFile, now)
	if err != nil {
		return nil, nil, &KeyPairError{File: certFile, Err: err}
	}
	key, err := loadKey(keyFile)
	if err != nil {
		return nil, nil, &KeyPairError{File: keyFile, Key: true, Err: err}
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, &KeyPairError{File: keyFile, Key: true, Err: fmt.Errorf("key does not match certificate %s", certFile)}
	}
	return cert, key, nil
}

func loadCertificate(file string, now time.Time) (*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var block *pem.Block
	for rest := data; ; {
		block, rest = pem.Decode(rest)
		if block == nil || block.Type == "CERTIFICATE" {
			break
		}
	}
	if block == nil {
		return nil, errors.New("no CERTIFICATE PEM block found")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate: %w", err)
	}
	if _, ok := cert.PublicKey.(*rsa.PublicKey); !ok {
		return nil, fmt.Errorf("certificate key is %v, not RSA", cert.PublicKeyAlgorithm)
	}
	if now.After(cert.NotAfter) {
		return nil, fmt.Errorf("certificate expired on %s", cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(cert.NotBefore) {
		return nil, fmt.Errorf("certificate is not valid until %s", cert.NotBefore.UTC().Format(time.RFC3339))
	}
	return cert, nil
}

func loadKey(file string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var block *pem.Block
	for rest := data; ; {
		block, rest = pem.Decode(rest)
		if block == nil || strings.HasSuffix(block.Type, "PRIVATE KEY") {
			break
		}
	}
	if block == nil {
		if b, _ := pem.Decode(data); b != nil && b.Type == "CERTIFICATE" {
			return nil, errors.New("no PRIVATE KEY PEM block found: the file holds a certificate, not its key")
		}
		return nil, errors.New("no PRIVATE KEY PEM block found")
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing PKCS#1 key: %w", err)
		}
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing PKCS#8 key: %w", err)
		}
		var ok bool
		if key, ok = k.(*rsa.PrivateKey); !ok {
			return nil, fmt.Errorf("key is %s, not RSA", keyKind(k))
		}
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("encrypted keys are not supported; decrypt it first")
	default:
		return nil, fmt.Errorf("%s block is not an RSA key", block.Type)
	}
	if n := key.N.BitLen(); n < minKeyBits {
		return nil, fmt.Errorf("RSA key of %d bits is too short, want at least %d", n, minKeyBits)
	}
	return key, nil
}

// keyKind names a parsed private key's algorithm for an error message.
func keyKind(k any) string {
	switch k.(type) {
	case *ecdsa.PrivateKey:
		return "ECDSA"
	case ed25519.PrivateKey:
		return "Ed25519"
	case *ecdh.PrivateKey:
		return "X25519"
	}
	return "not a signing key"
}

// GenerateKeyPair returns a new self-signed certificate for commonName, valid
// from five minutes ago for validFor, and its RSA 2048 key (PKCS#8), both PEM
// encoded. It serves `photosync demo` and tests; production certificates
// come from the administrator.
func GenerateKeyPair(commonName string, validFor time.Duration) (certPEM, keyPEM []byte, err error) {
	if commonName == "" {
		return nil, nil, errors.New("oauth: generating key pair: common name is empty")
	}
	if validFor <= 0 {
		return nil, nil, fmt.Errorf("oauth: generating key pair: validity %v is not positive", validFor)
	}
	now := time.Now()
	return generateKeyPair(commonName, minKeyBits, now.Add(-DefaultClockSkew), now.Add(validFor))
}

func generateKeyPair(commonName string, bits int, notBefore, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, nil, fmt.Errorf("oauth: generating key pair: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("oauth: generating key pair: serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("oauth: generating key pair: certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("oauth: generating key pair: encoding key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	return certPEM, keyPEM, nil
}

// NewRealm returns a random version-4 GUID in lower case, fit for
// Options.Realm.
func NewRealm() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return formatGUID(b)
}

func formatGUID(b [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Thumbprint returns the x5t of cert: the unpadded base64url encoding of the
// SHA-1 hash of its DER bytes.
func Thumbprint(cert *x509.Certificate) string {
	sum := sha1.Sum(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
