package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
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
// in that order. Every pair is loaded and every failure reported, each
// naming its config key.
func loadPairs(c configs.S2S) ([]oauth.KeyPair, error) {
	type entry struct {
		configs.CertificatePair
		key string // the config key of the pair
	}
	var files []entry
	if c.Certificate != "" {
		files = append(files, entry{configs.CertificatePair{Certificate: c.Certificate, Key: c.Key}, "s2s"})
	}
	for i, p := range c.Certificates {
		files = append(files, entry{p, fmt.Sprintf("s2s.certificates[%d]", i)})
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("s2s.certificate: no certificate configured")
	}
	var pairs []oauth.KeyPair
	var errs []error
	for _, f := range files {
		cert, key, err := oauth.LoadKeyPair(f.Certificate, f.Key)
		if err != nil {
			errs = append(errs, keyPairError(f.key, err))
			continue
		}
		pairs = append(pairs, oauth.KeyPair{Certificate: cert, Key: key})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return pairs, nil
}

// keyPairError names the config key of the file LoadKeyPair failed on:
// section.certificate or section.key.
func keyPairError(section string, err error) error {
	var kp *oauth.KeyPairError
	if !errors.As(err, &kp) {
		return fmt.Errorf("%s: %w", section, err)
	}
	name := section + ".certificate"
	if kp.Key {
		name = section + ".key"
	}
	return fmt.Errorf("%s: %s: %w", name, kp.File, kp.Err)
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
	warning := publicURLWarning(metadataURL(cfg), cfg.S2S.PublicURL != "")
	if warning != "" {
		fmt.Fprintf(stderr, "photosync trust: warning: %s\n", warning)
	}
	writeTrust(stdout, cfg, issuer.Metadata(), warning)
	return nil
}

// Microsoft's references for the lines writeTrust prints.
const (
	refNewPartnerApplication = "https://learn.microsoft.com/powershell/module/exchange/new-partnerapplication"
	refSetPartnerApplication = "https://learn.microsoft.com/powershell/module/exchange/set-partnerapplication"
	refNewMailUser           = "https://learn.microsoft.com/powershell/module/exchange/new-mailuser"
	refNewRoleAssignment     = "https://learn.microsoft.com/powershell/module/exchange/new-managementroleassignment"
	refUserApplication       = "https://learn.microsoft.com/exchange/userapplication-role-exchange-2013-help"
	refLinkedAccountHowTo    = "https://learn.microsoft.com/skypeforbusiness/deploy/integrate-with-exchange-server/oauth-with-online-and-on-premises"
)

// publicURLWarning says why Exchange may not reach our metadata document at
// u, built from s2s.public_url (set: whether it was set), or "" when
// nothing looks wrong.
func publicURLWarning(u string, set bool) string {
	if !set {
		return fmt.Sprintf("s2s.public_url is unset, so the metadata URL is made from listen (%s), which Exchange cannot reach; set s2s.public_url to the https URL Exchange reaches photosync at", u)
	}
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Sprintf("s2s.public_url does not parse: %v", err)
	}
	if p.Scheme != "https" {
		return fmt.Sprintf("s2s.public_url is %s, not https: Exchange reads partner metadata over https only", p.Scheme)
	}
	if h := p.Hostname(); loopback(h) || unspecified(h) {
		return fmt.Sprintf("s2s.public_url's host %s is this machine's loopback (or no address), which Exchange cannot reach", h)
	}
	return ""
}

func unspecified(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// writeTrust writes the trust instructions for cfg and our metadata md:
// the commands an Exchange administrator runs, each as Microsoft's cmdlet
// reference documents it.
func writeTrust(w io.Writer, cfg configs.Config, md oauth.Metadata, warning string) {
	u := metadataURL(cfg)
	psq := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" } // PowerShell single quotes
	if warning != "" {
		fmt.Fprintf(w, "WARNING: %s.\n\n", warning)
	}
	fmt.Fprintf(w, "photosync's auth metadata document (Exchange must reach it over HTTPS):\n  %s\n\n", u)
	fmt.Fprintf(w, "issuer: %s\nrealm:  %s\ncertificates published (x5t, newest signs):\n", md.Issuer, cfg.S2S.Realm)
	for _, k := range md.Keys {
		fmt.Fprintf(w, "  %s\n", k.KeyInfo.X5T)
	}
	fmt.Fprintf(w, "\nOn an Exchange server, in the Exchange Management Shell (Scripts folder):\n")
	fmt.Fprintf(w, "  .\\Configure-EnterprisePartnerApplication.ps1 -AuthMetadataUrl %s -ApplicationType SharePoint\n", psq(u))

	account := "photosync-ApplicationAccount"
	fmt.Fprintf(w, "\nOr by hand: a linked account for photosync, the UserApplication role for it (partner\n")
	fmt.Fprintf(w, "applications act on behalf of users through it), and the partner application read\n")
	fmt.Fprintf(w, "from our metadata document:\n")
	fmt.Fprintf(w, "  $account = New-MailUser -Name %s -ExternalEmailAddress %s\n", psq(account), psq(account+"@"+exampleDomain(cfg)))
	fmt.Fprintf(w, "  Set-MailUser -Identity $account.Identity -HiddenFromAddressListsEnabled $true\n")
	fmt.Fprintf(w, "  New-ManagementRoleAssignment -Role UserApplication -User $account.Identity\n")
	fmt.Fprintf(w, "  New-PartnerApplication -Name 'photosync' -AuthMetadataUrl %s -LinkedAccount $account.Identity\n", psq(u))
	fmt.Fprintf(w, "(an existing partner application gets the account with Set-PartnerApplication -Identity 'photosync' -LinkedAccount $account.Identity)\n")

	fmt.Fprintf(w, "\nAlternative, only where an authorization server Exchange trusts (New-AuthServer) vouches for\n")
	fmt.Fprintf(w, "photosync: the -ApplicationIdentifier form, a different parameter set (never with -AuthMetadataUrl);\n")
	fmt.Fprintf(w, "Exchange then reads no certificate from photosync:\n")
	fmt.Fprintf(w, "  New-PartnerApplication -Name 'photosync' -ApplicationIdentifier %s -Realm %s -LinkedAccount $account.Identity\n", psq(cfg.S2S.ClientID), psq(cfg.S2S.Realm))

	fmt.Fprintf(w, "\nAfter adding or removing a certificate in s2s.certificates (and restarting photosync):\n")
	fmt.Fprintf(w, "  Get-PartnerApplication | Where-Object { $_.AuthMetadataUrl -eq %s } | Set-PartnerApplication -RefreshAuthMetadata\n", psq(u))
	fmt.Fprintf(w, "\nMicrosoft's references:\n")
	for _, r := range []string{refNewPartnerApplication, refSetPartnerApplication, refNewMailUser, refNewRoleAssignment, refUserApplication, refLinkedAccountHowTo} {
		fmt.Fprintf(w, "  %s\n", r)
	}
	fmt.Fprintf(w, "\nCheck the whole path for one mailbox with:\n  photosync doctor --config FILE someone@%s\n", exampleDomain(cfg))
}

func exampleDomain(cfg configs.Config) string {
	return autodiscover.DefaultHosts(cfg.Exchange.AutodiscoverDomain)[0]
}
