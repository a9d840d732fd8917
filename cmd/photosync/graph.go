package main

import (
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"

	"photosync/configs"
	"photosync/oauth"
	psync "photosync/sync"
)

// graphSource builds the Microsoft Graph source from the graph section:
// TLS verified against the system roots plus graph.ca_file,
// and the certificate loaded and checked as s2s's is.
func graphSource(c configs.Graph, log *slog.Logger) (*psync.Graph, error) {
	roots, err := trustedRoots("graph.ca_file", c.CAFile)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	client := &http.Client{Transport: tr}
	var cert *x509.Certificate
	var key *rsa.PrivateKey
	if c.Certificate != "" {
		if cert, key, err = oauth.LoadKeyPair(c.Certificate, c.Key); err != nil {
			return nil, fmt.Errorf("graph.certificate: %w", err)
		}
	}
	return psync.NewGraph(psync.Graph{
		Tenant:       c.Tenant,
		ClientID:     c.ClientID,
		ClientSecret: c.Secret(),
		Certificate:  cert,
		Key:          key,
		TokenURL:     c.TokenURL,
		BaseURL:      c.BaseURL,
		Client:       client,
		Timeout:      c.Timeout.D(),
		Logger:       log,
	})
}
