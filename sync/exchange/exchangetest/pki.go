package exchangetest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"time"

	"photosync/internal/testpki"
)

type pki struct {
	caPEM      []byte
	caPool     *x509.CertPool
	leaf       tls.Certificate
	signCert   *x509.Certificate
	metadataID string
}

// newPKI makes a CA, a TLS leaf for loopback names and hostnames signed by it, and a
// self-signed RSA certificate standing for Exchange's auth certificate.
// Validity uses the wall clock because TLS clients check it against theirs.
func newPKI(hostnames []string) (*pki, error) {
	tlsPKI, err := testpki.New("exchangetest CA", hostnames...)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	signKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	signTmpl := &x509.Certificate{
		SerialNumber: testpki.Serial(),
		Subject:      pkix.Name{CommonName: "Microsoft Exchange Server Auth Certificate"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(5, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	signDER, err := x509.CreateCertificate(rand.Reader, signTmpl, signTmpl, &signKey.PublicKey, signKey)
	if err != nil {
		return nil, fmt.Errorf("auth certificate: %w", err)
	}
	signCert, err := x509.ParseCertificate(signDER)
	if err != nil {
		return nil, err
	}

	id := make([]byte, 16)
	_, _ = rand.Read(id)
	h := hex.EncodeToString(id)
	return &pki{
		caPEM:      tlsPKI.CAPEM,
		caPool:     tlsPKI.Pool,
		leaf:       tlsPKI.Leaf,
		signCert:   signCert,
		metadataID: "_" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32],
	}, nil
}
