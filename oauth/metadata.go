package oauth

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

const (
	// maxMetadataBytes caps a fetched metadata document; real ones are a
	// few kilobytes.
	maxMetadataBytes = 1 << 20
	// fetchTimeout bounds FetchMetadata when ctx has no deadline.
	fetchTimeout = 30 * time.Second
)

// Metadata is an auth metadata document ("…/metadata/json/1"), the JSON by
// which an S2S party publishes its issuer name and signing certificates. The
// same type describes ours (an Exchange-style superset of SharePoint's) and
// the ones we parse from others. Parsing is lenient: see ParseMetadata.
type Metadata struct {
	ID      string `json:"id,omitempty"`
	Version string `json:"version,omitempty"`
	Name    string `json:"name,omitempty"`
	// DeclaredRealm is the document's "realm" member, often absent; use the
	// Realm method for the effective realm.
	DeclaredRealm    string     `json:"realm,omitempty"`
	ServiceName      string     `json:"serviceName,omitempty"`
	Issuer           string     `json:"issuer"`
	AllowedAudiences []string   `json:"allowedAudiences,omitempty"`
	Keys             []Key      `json:"keys"`
	Endpoints        []Endpoint `json:"endpoints,omitempty"`
}

// Key is one entry of Metadata.Keys.
type Key struct {
	Usage    string   `json:"usage"` // "signing"
	KeyInfo  KeyInfo  `json:"keyinfo,omitzero"`
	KeyValue KeyValue `json:"keyvalue"`
}

// KeyInfo names a key's certificate by thumbprint.
type KeyInfo struct {
	X5T string `json:"x5t,omitempty"` // base64url or padded base64 of the SHA-1 of the DER
}

// KeyValue holds a key's certificate.
type KeyValue struct {
	Type  string `json:"type"`  // "x509Certificate"
	Value string `json:"value"` // standard base64 of the DER
}

// Endpoint is one entry of Metadata.Endpoints.
type Endpoint struct {
	Location string `json:"location"`
	Protocol string `json:"protocol"`
	Usage    string `json:"usage"`
}

// ourMetadata builds our document. Its id is derived from the issuer and the
// certificate rather than drawn at random, so every replica and every restart
// serves the same document until the certificate changes.
func ourMetadata(clientID, realm, metadataURL string, certs []*x509.Certificate) Metadata {
	issuer := clientID + "@" + realm
	// The id stays what it was before rotation: it depends on the first
	// (configured) certificate only.
	sum := sha256.Sum256(append([]byte(issuer+"\x00"), certs[0].Raw...))
	m := Metadata{
		ID:               "_" + formatGUID([16]byte(sum[:16])),
		Version:          "1.0",
		Name:             clientID,
		DeclaredRealm:    realm,
		ServiceName:      clientID,
		Issuer:           issuer,
		AllowedAudiences: []string{issuer},
	}
	seen := map[string]bool{}
	for _, cert := range certs {
		if seen[Thumbprint(cert)] {
			continue
		}
		seen[Thumbprint(cert)] = true
		m.Keys = append(m.Keys, Key{
			Usage:    "signing",
			KeyInfo:  KeyInfo{X5T: Thumbprint(cert)},
			KeyValue: KeyValue{Type: "x509Certificate", Value: base64.StdEncoding.EncodeToString(cert.Raw)},
		})
	}
	if metadataURL != "" {
		m.Endpoints = []Endpoint{{Location: metadataURL, Protocol: "OAuth2", Usage: "metadata"}}
	}
	return m
}

func (m Metadata) clone() Metadata {
	m.AllowedAudiences = slices.Clone(m.AllowedAudiences)
	m.Keys = slices.Clone(m.Keys)
	m.Endpoints = slices.Clone(m.Endpoints)
	return m
}

// Realm returns the document's realm: its "realm" member, or else the text
// after the last '@' of its issuer. Exchange's is "*".
func (m Metadata) Realm() string {
	if m.DeclaredRealm != "" {
		return m.DeclaredRealm
	}
	if at := strings.LastIndexByte(m.Issuer, '@'); at >= 0 {
		return m.Issuer[at+1:]
	}
	return ""
}

// Certificates returns the certificates of the document's usable signing
// keys: usage "signing" and type "x509Certificate" (any case), a value that
// parses, and a keyinfo x5t, when present, that matches it.
func (m Metadata) Certificates() []*x509.Certificate {
	certs, _ := m.certificates()
	return certs
}

// certificates returns the usable certificates and why the others were
// skipped.
func (m Metadata) certificates() ([]*x509.Certificate, []error) {
	var certs []*x509.Certificate
	var errs []error
	for n, k := range m.Keys {
		cert, err := k.certificate()
		if err != nil {
			errs = append(errs, fmt.Errorf("key %d: %w", n, err))
			continue
		}
		certs = append(certs, cert)
	}
	return certs, errs
}

func (k Key) certificate() (*x509.Certificate, error) {
	if !strings.EqualFold(k.Usage, "signing") {
		return nil, fmt.Errorf("usage %q is not signing", k.Usage)
	}
	if !strings.EqualFold(k.KeyValue.Type, "x509Certificate") {
		return nil, fmt.Errorf("type %q is not x509Certificate", k.KeyValue.Type)
	}
	der, err := decodeBase64(k.KeyValue.Value)
	if err != nil {
		return nil, fmt.Errorf("decoding certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate: %w", err)
	}
	if k.KeyInfo.X5T != "" {
		want, err := decodeBase64(k.KeyInfo.X5T)
		if err != nil {
			return nil, fmt.Errorf("decoding x5t: %w", err)
		}
		if got := sha1.Sum(der); !bytes.Equal(got[:], want) {
			return nil, fmt.Errorf("x5t %q does not match the certificate", k.KeyInfo.X5T)
		}
	}
	return cert, nil
}

// decodeBase64 accepts standard or URL-safe base64, padded or not, because
// metadata documents in the wild use both for x5t.
func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
	s = strings.TrimRight(s, "=")
	if s == "" {
		return nil, errors.New("empty value")
	}
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	return enc.DecodeString(s)
}

// ParseMetadata parses a metadata document leniently, as SharePoint and
// Exchange documents differ: member names and the usage and type values are
// matched in any case (keyvalue/keyValue, signing/Signing), keyinfo,
// endpoints and realm may be missing, and x5t may be base64url or padded
// base64. It fails when the document has no issuer or no usable signing key.
func ParseMetadata(b []byte) (Metadata, error) {
	m, err := parseMetadata(b)
	if err != nil {
		return Metadata{}, fmt.Errorf("oauth: parsing metadata: %w", err)
	}
	return m, nil
}

func parseMetadata(b []byte) (Metadata, error) {
	var m Metadata
	// encoding/json matches member names to the struct tags case-insensitively.
	if err := json.Unmarshal(b, &m); err != nil {
		return Metadata{}, err
	}
	if m.Issuer == "" {
		return Metadata{}, errors.New("no issuer")
	}
	certs, errs := m.certificates()
	if len(certs) == 0 {
		return Metadata{}, fmt.Errorf("no usable signing key%s", reasons(errs))
	}
	return m, nil
}

// FetchMetadata GETs and parses the metadata document at url. A nil client
// means http.DefaultClient; when ctx has no deadline, 30s is allowed. The
// document must come with status 200 and be at most 1 MiB.
func FetchMetadata(ctx context.Context, client *http.Client, url string) (Metadata, error) {
	m, err := fetchMetadata(ctx, client, url)
	if err != nil {
		return Metadata{}, fmt.Errorf("oauth: fetching metadata from %s: %w", url, err)
	}
	return m, nil
}

func fetchMetadata(ctx context.Context, client *http.Client, url string) (Metadata, error) {
	if client == nil {
		client = http.DefaultClient
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, fetchTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Metadata{}, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return Metadata{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // let the connection be reused
		return Metadata{}, fmt.Errorf("unexpected status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return Metadata{}, fmt.Errorf("reading body: %w", err)
	}
	if len(body) > maxMetadataBytes {
		return Metadata{}, fmt.Errorf("document larger than %d bytes", maxMetadataBytes)
	}
	m, err := parseMetadata(body)
	if err != nil {
		return Metadata{}, fmt.Errorf("parsing metadata: %w", err)
	}
	return m, nil
}

// CheckExchangeMetadata reports whether m looks like Exchange's metadata
// document: its issuer is ExchangeID@realm, where realm is "*" or a GUID,
// and it lists at least one usable signing certificate. photosync checks
// this at startup to learn that Exchange is there and speaks S2S.
func CheckExchangeMetadata(m Metadata) error {
	id, realm, ok := cutLast(m.Issuer, "@")
	if !ok || !strings.EqualFold(id, ExchangeID) || (realm != "*" && !guidRE.MatchString(realm)) {
		return fmt.Errorf("oauth: exchange metadata: issuer %q is not Exchange's, want %s@<realm or *>", m.Issuer, ExchangeID)
	}
	if certs, errs := m.certificates(); len(certs) == 0 {
		return fmt.Errorf("oauth: exchange metadata: no usable signing certificate among %d keys%s", len(m.Keys), reasons(errs))
	}
	return nil
}

func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// reasons formats why keys were skipped as " (key 0: …; key 1: …)", or ""
// when there is nothing to say.
func reasons(errs []error) string {
	if len(errs) == 0 {
		return ""
	}
	s := make([]string, len(errs))
	for i, err := range errs {
		s[i] = err.Error()
	}
	return " (" + strings.Join(s, "; ") + ")"
}
