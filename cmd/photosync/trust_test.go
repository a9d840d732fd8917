package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"photosync/oauth"
)

// writeKeyPairs writes n generated pairs s2s-0.crt/.key … into dir and
// returns their thumbprints.
func writeKeyPairs(t *testing.T, dir string, n int) []string {
	t.Helper()
	var x5t []string
	for i := range n {
		certPEM, keyPEM, err := oauth.GenerateKeyPair("photosync test", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Join(dir, "s2s-"+string(rune('0'+i)))
		if err := os.WriteFile(base+".crt", certPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(base+".key", keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		b, _ := pem.Decode(certPEM)
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		x5t = append(x5t, oauth.Thumbprint(c))
	}
	return x5t
}

func TestTrust(t *testing.T) {
	const realm = "6e5b2c1a-3f4d-4c8e-9a1b-2c3d4e5f6a7b"
	const defaultURL = "https://127.0.0.1:8443/_layouts/15/metadata/json/1"
	tests := []struct {
		name  string
		s2s   string // the s2s section after realm
		pairs int
		want  []string
		warn  string // on stderr and in the output; "" none
	}{
		{name: "one certificate, default public url", pairs: 1,
			s2s: "  certificate: s2s-0.crt\n  key: s2s-0.key\n",
			want: []string{
				"  " + defaultURL + "\n",
				"issuer: 00000003-0000-0ff1-ce00-000000000000@" + realm,
				`.\Configure-EnterprisePartnerApplication.ps1 -AuthMetadataUrl '` + defaultURL + `' -ApplicationType SharePoint`,
				"  $account = New-MailUser -Name 'photosync-ApplicationAccount' -ExternalEmailAddress 'photosync-ApplicationAccount@contoso.com'\n",
				"  Set-MailUser -Identity $account.Identity -HiddenFromAddressListsEnabled $true\n",
				"  New-ManagementRoleAssignment -Role UserApplication -User $account.Identity\n",
				"  New-PartnerApplication -Name 'photosync' -AuthMetadataUrl '" + defaultURL + "' -LinkedAccount $account.Identity\n",
				"  New-PartnerApplication -Name 'photosync' -ApplicationIdentifier '00000003-0000-0ff1-ce00-000000000000' -Realm '" + realm + "' -LinkedAccount $account.Identity\n",
				"Set-PartnerApplication -RefreshAuthMetadata",
				refNewPartnerApplication, refNewRoleAssignment, refUserApplication,
				"photosync doctor --config FILE someone@contoso.com",
			},
			warn: "s2s.public_url is unset"},
		{name: "rotation and a public url with a quote", pairs: 2,
			s2s: "  public_url: https://photos.contoso.com/o'brien/\n  certificates:\n    - certificate: s2s-0.crt\n      key: s2s-0.key\n    - certificate: s2s-1.crt\n      key: s2s-1.key\n",
			want: []string{
				"-AuthMetadataUrl 'https://photos.contoso.com/o''brien/_layouts/15/metadata/json/1'",
			}},
		{name: "http public url", pairs: 1,
			s2s:  "  public_url: http://photos.contoso.com\n  certificate: s2s-0.crt\n  key: s2s-0.key\n",
			warn: "s2s.public_url is http, not https"},
		{name: "loopback public url", pairs: 1,
			s2s:  "  public_url: https://localhost:8443\n  certificate: s2s-0.crt\n  key: s2s-0.key\n",
			warn: "s2s.public_url's host localhost is this machine's loopback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			x5t := writeKeyPairs(t, dir, tt.pairs)
			config := "listen: 127.0.0.1:8443\nexchange:\n  autodiscover_domain: autodiscover.contoso.com\ns2s:\n  realm: " + realm + "\n" + tt.s2s
			path := filepath.Join(dir, "photosync.yaml")
			if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr strings.Builder
			if code := run(context.Background(), []string{"trust", "--config", path}, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			out := stdout.String()
			for _, w := range append(tt.want, x5t...) {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			// -ApplicationIdentifier and -AuthMetadataUrl are different
			// parameter sets of New-PartnerApplication: never on one line.
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, "PartnerApplication -") && strings.Contains(line, "-ApplicationIdentifier") && strings.Contains(line, "-AuthMetadataUrl") {
					t.Errorf("one line has both parameter sets: %s", line)
				}
			}
			if tt.warn == "" {
				if strings.Contains(out, "WARNING") || stderr.Len() != 0 {
					t.Errorf("unexpected warning: %s%s", stderr.String(), out)
				}
			} else if !strings.Contains(stderr.String(), "warning: "+tt.warn) || !strings.HasPrefix(out, "WARNING: "+tt.warn) {
				t.Errorf("warning %q missing; stderr %q; output:\n%s", tt.warn, stderr.String(), out)
			}
			if strings.Contains(out, "PRIVATE KEY") {
				t.Error("output shows a private key")
			}
		})
	}
}

func TestTrustNeedsConfig(t *testing.T) {
	var stdout, stderr strings.Builder
	if code := run(context.Background(), []string{"trust"}, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
}
