package main

import (
	"fmt"
	"io"
	"strings"

	"photosync/autodiscover"
	"photosync/configs"
	"photosync/oauth"
)

// metadataPath is where photosync serves its auth metadata document, the
// path SharePoint uses.
const metadataPath = "/_layouts/15/metadata/json/1"

// metadataURL is the URL at which Exchange reads our metadata document.
func metadataURL(cfg configs.Config) string {
	base := strings.TrimRight(cfg.S2S.PublicURL, "/")
	if base == "" {
		base = "https://" + cfg.Listen
	}
	return base + metadataPath
}

// loadPairs loads s2s.certificate/s2s.key (when set) and s2s.certificates,
// in that order.
func loadPairs(c configs.S2S) ([]oauth.KeyPair, error) {
	var files []configs.CertificatePair
	if c.Certificate != "" {
		files = append(files, configs.CertificatePair{Certificate: c.Certificate, Key: c.Key})
	}
	files = append(files, c.Certificates...)
	if len(files) == 0 {
		return nil, fmt.Errorf("s2s: no certificate configured")
	}
	var pairs []oauth.KeyPair
	for _, f := range files {
		cert, key, err := oauth.LoadKeyPair(f.Certificate, f.Key)
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, oauth.KeyPair{Certificate: cert, Key: key})
	}
	return pairs, nil
}

// trustCmd prints what the Exchange administrator runs so that Exchange
// trusts photosync: our metadata URL and the partner-application commands
// with our values filled in.
func trustCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("trust", stderr)
	path := fs.String("config", "", "the admin config file (YAML)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		fmt.Fprintln(stderr, "photosync trust: --config FILE is required")
		return errUsage
	}
	cfg, err := configs.Load(*path)
	if err != nil {
		return err
	}
	pairs, err := loadPairs(cfg.S2S)
	if err != nil {
		return err
	}
	issuer, err := oauth.New(oauth.Options{
		Certificate: pairs[0].Certificate, Key: pairs[0].Key, Rotation: pairs[1:],
		Realm: cfg.S2S.Realm, ClientID: cfg.S2S.ClientID, MetadataURL: metadataURL(cfg),
	})
	if err != nil {
		return err
	}
	writeTrust(stdout, cfg, issuer.Metadata())
	return nil
}

// writeTrust writes the trust instructions for cfg and our metadata md.
func writeTrust(w io.Writer, cfg configs.Config, md oauth.Metadata) {
	u := metadataURL(cfg)
	psq := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" } // PowerShell single quotes
	fmt.Fprintf(w, "photosync's auth metadata document (Exchange must reach it over HTTPS):\n  %s\n\n", u)
	fmt.Fprintf(w, "issuer: %s\nrealm:  %s\ncertificates published (x5t, newest signs):\n", md.Issuer, cfg.S2S.Realm)
	for _, k := range md.Keys {
		fmt.Fprintf(w, "  %s\n", k.KeyInfo.X5T)
	}
	fmt.Fprintf(w, "\nOn an Exchange server, in the Exchange Management Shell (Scripts folder):\n")
	fmt.Fprintf(w, "  .\\Configure-EnterprisePartnerApplication.ps1 -AuthMetadataUrl %s -ApplicationType SharePoint\n", psq(u))
	fmt.Fprintf(w, "\nOr, without the script (then assign the RBAC roles yourself):\n")
	fmt.Fprintf(w, "  New-PartnerApplication -Name 'photosync' -ApplicationIdentifier %s -AuthMetadataUrl %s\n", psq(cfg.S2S.ClientID), psq(u))
	fmt.Fprintf(w, "\nAfter adding or removing a certificate in s2s.certificates (and restarting photosync):\n")
	fmt.Fprintf(w, "  Get-PartnerApplication | Where-Object { $_.AuthMetadataUrl -eq %s } | Set-PartnerApplication -RefreshAuthMetadata\n", psq(u))
	fmt.Fprintf(w, "\nCheck the whole path for one mailbox with:\n  photosync doctor --config FILE someone@%s\n", exampleDomain(cfg))
}

func exampleDomain(cfg configs.Config) string {
	return autodiscover.DefaultHosts(cfg.Exchange.AutodiscoverDomain)[0]
}
