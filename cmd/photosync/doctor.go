package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"photosync/autodiscover"
	"photosync/configs"
	"photosync/internal/untrusted"
	"photosync/oauth"
	"photosync/sync/directory"
	"photosync/sync/exchange"
	"photosync/sync/graph"
	"photosync/sync/photo"
)

// doctorCmd walks every step of a pull for one mailbox and prints one line
// per step: PASS, FAIL or SKIP (after a failure), the observed value, and
// for a failure the fix.
func doctorCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("doctor", stderr)
	path := fs.String("config", "", "the admin config file (YAML)")
	size := fs.String("size", "HR96x96", "the photo size to fetch")
	timeout := fs.Duration("timeout", time.Minute, "deadline of the whole check")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	// The address may come before or after the flags.
	rest := fs.Args()
	if len(rest) > 0 {
		email := rest[0]
		if err := fs.Parse(rest[1:]); err != nil {
			return errUsage
		}
		rest = append([]string{email}, fs.Args()...)
	}
	if *path == "" || len(rest) != 1 {
		fmt.Fprintln(stderr, "usage: photosync doctor --config FILE EMAIL")
		return errUsage
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if !runDoctor(ctx, stdout, *path, rest[0], *size) {
		return errFailed
	}
	return nil
}

// report prints the steps.
type report struct {
	w      io.Writer
	failed bool
}

func (r *report) pass(step, observed string) {
	if r.failed {
		r.skip(step)
		return
	}
	fmt.Fprintf(r.w, "PASS  %-12s %s\n", step, oneLine(observed))
}

func (r *report) fail(step, observed, fix string) {
	r.failed = true
	fmt.Fprintf(r.w, "FAIL  %-12s %s\n", step, oneLine(observed))
	if fix != "" {
		fmt.Fprintf(r.w, "      %-12s fix: %s\n", "", oneLine(fix))
	}
}

func (r *report) skip(step string) {
	fmt.Fprintf(r.w, "SKIP  %-12s (an earlier step failed)\n", step)
}

func (r *report) skipAll(steps []string) {
	for _, s := range steps {
		r.skip(s)
	}
}

// note prints a step that did not run for a reason other than a failure.
func (r *report) note(step, observed string) {
	fmt.Fprintf(r.w, "SKIP  %-12s %s\n", step, oneLine(observed))
}

// oneLine makes text from outside (errors, headers) one printable line;
// doctor shows errors whole, so the bound is generous.
func oneLine(s string) string { return untrusted.Text(s, 4000) }

var doctorSteps = []string{"config", "tls", "metadata", "autodiscover", "photo urls", "token", "photo"}

// runDoctor walks the steps and reports whether all passed: Exchange's own
// steps when Exchange is a source, then, when the chain has other sources,
// what each source answers for the person and which answer is served.
func runDoctor(ctx context.Context, w io.Writer, path, email, size string) bool {
	r := &report{w: w}
	cfg, err := configs.Load(path)
	if err != nil {
		r.fail("config", err.Error(), "correct the keys named above; configs/photosync.example.yaml documents every key")
		r.skipAll(doctorSteps[1:])
		return false
	}
	if !cfg.Photos.ImportEnabled {
		r.fail("config", "photos.import_enabled is false: nothing is pulled from the sources", "set photos.import_enabled: true")
		r.skipAll(doctorSteps[1:])
		return false
	}
	chain := len(cfg.Sources) > 1 || !cfg.UsesExchange()
	var x *exchangeParts
	if cfg.UsesExchange() {
		var ok bool
		if x, ok = doctorExchange(ctx, r, cfg, path, email, size, chain); !ok {
			if chain {
				r.skipAll(append(cfg.Sources, "chain"))
			}
			return false
		}
	} else {
		r.pass("config", fmt.Sprintf("%s: sources %s", path, strings.Join(cfg.Sources, ", ")))
	}
	if !chain {
		return !r.failed
	}
	return doctorChain(ctx, r, cfg, x, email, size)
}

// doctorExchange walks Exchange's steps: TLS, metadata, Autodiscover, the
// photo URLs, the token and GetUserPhoto. With more sources in the chain
// (chained), Exchange having no photo is not a failure: the next source is
// asked.
func doctorExchange(ctx context.Context, r *report, cfg configs.Config, path, email, size string, chained bool) (*exchangeParts, bool) {
	skipFrom := func(i int) (*exchangeParts, bool) {
		r.skipAll(doctorSteps[i:])
		return nil, false
	}

	// 1. config
	sec := &secrets{}
	err := sec.loadExchange(cfg)
	var x *exchangeParts
	if err == nil {
		x, err = newExchange(cfg, sec, slog.New(slog.DiscardHandler), nil, exchangeNoErrorCache)
	}
	if err != nil {
		r.fail("config", err.Error(), "s2s.certificate/s2s.key (or s2s.certificates) must be a PEM certificate and its RSA key; exchange.autodiscover_domain must be in exchange.allowed_hosts")
		return skipFrom(1)
	}
	issuer, client, loc := x.issuer, x.client, x.locator
	sources := ""
	if chained {
		sources = ", sources " + strings.Join(cfg.Sources, ", ")
	}
	r.pass("config", fmt.Sprintf("%s: autodiscover %s, issuer %s%s", path, cfg.Exchange.AutodiscoverDomain, issuer.Issuer(), sources))

	// 2. tls
	scheme := "https"
	if cfg.Exchange.AllowHTTP {
		scheme = "http"
	}
	host := cfg.Exchange.AutodiscoverDomain
	if scheme == "http" {
		r.pass("tls", "not checked: exchange.allow_http is on, Exchange is reached over plain http")
	} else if observed, err := checkTLS(ctx, client, host); err != nil {
		fix := "check that Exchange listens on " + withPort(host) + " with a certificate for that name"
		var ua x509.UnknownAuthorityError
		if errors.As(err, &ua) {
			fix = "add the CA that issued Exchange's certificate to exchange.ca_file (PEM)"
		}
		r.fail("tls", err.Error(), fix)
		return skipFrom(2)
	} else {
		r.pass("tls", observed)
	}

	// 3. metadata
	metaURL := x.metadataURL
	md, err := oauth.FetchMetadata(ctx, client, metaURL)
	if err == nil {
		err = oauth.CheckExchangeMetadata(md)
	}
	if err != nil {
		r.fail("metadata", metaURL+": "+err.Error(),
			"Exchange publishes its auth metadata at /autodiscover/metadata/json/1; check the Autodiscover virtual directory and Get-AuthConfig")
		return skipFrom(3)
	}
	r.pass("metadata", fmt.Sprintf("%s: issuer %s, %d certificate(s); our realm %s", metaURL, md.Issuer, len(md.Certificates()), issuer.Realm()))

	// 4. autodiscover, 5. photo urls
	settings, err := loc.Lookup(ctx, email)
	var se *autodiscover.StatusError
	switch {
	case errors.As(err, &se) && se.StatusCode == http.StatusUnauthorized:
		r.fail("autodiscover", fmt.Sprintf("%s answered 401: the token was rejected", se.URL), "see the token step")
		r.skip("photo urls")
		ch := oauth.ParseChallenge([]string{se.Challenge}, se.Diagnostics)
		r.fail("token", "rejected by Autodiscover: "+findings(ch, issuer.Issuer()), tokenFix(ch))
		return skipFrom(6)
	case errors.Is(err, autodiscover.ErrNoPhotosURL):
		r.pass("autodiscover", fmt.Sprintf("answered for %s%s", email, hops(settings)))
		r.fail("photo urls", err.Error(), "Set-WebServicesVirtualDirectory -ExternalUrl https://mail.example.com/EWS/Exchange.asmx on the Client Access server")
		return skipFrom(5)
	case err != nil:
		fix := "check exchange.autodiscover_domain, that the mailbox exists, and the Autodiscover virtual directory"
		if errors.Is(err, autodiscover.ErrRefusedURL) {
			fix = "Autodiscover pointed outside exchange.allowed_hosts; add the host there only if it is yours"
		}
		r.fail("autodiscover", err.Error(), fix)
		return skipFrom(4)
	}
	r.pass("autodiscover", fmt.Sprintf("answered for %s%s", email, hops(settings)))
	ecp, err := settings.EcpPhotoURL()
	if err != nil {
		r.fail("photo urls", "ExternalPhotosUrl "+settings.ExternalPhotosURL+"; "+err.Error(),
			"Set-EcpVirtualDirectory -ExternalUrl https://mail.example.com/ecp (people cannot change their photo until then)")
		return skipFrom(5)
	}
	r.pass("photo urls", fmt.Sprintf("ExternalPhotosUrl %s, ExternalEcpPhotoUrl %s", settings.ExternalPhotosURL, ecp))

	// 6. token, 7. photo
	info, err := x.source.Check(ctx, email, size)
	var pse *exchange.StatusError
	switch {
	case errors.Is(err, exchange.ErrUnauthorized) && errors.As(err, &pse):
		ch := oauth.ParseChallenge([]string{pse.WWWAuthenticate}, pse.Diagnostics)
		r.fail("token", "rejected by GetUserPhoto: "+findings(ch, issuer.Issuer()), tokenFix(ch))
		return skipFrom(6)
	case err != nil && !errors.As(err, &pse) && !isPhotoContentError(err):
		fix := "check that Exchange's photo endpoint is reachable"
		var ua x509.UnknownAuthorityError
		var he x509.HostnameError
		switch {
		case errors.As(err, &ua):
			fix = "the photo host's certificate is from a CA not trusted here: add it to exchange.ca_file (PEM)"
		case errors.As(err, &he):
			fix = "the photo host's certificate does not name it: check ExternalPhotosUrl (Set-WebServicesVirtualDirectory -ExternalUrl) against the certificate"
		}
		r.fail("token", err.Error(), fix)
		return skipFrom(6)
	}
	r.pass("token", "accepted by "+settings.ExternalPhotosURL)
	switch {
	case err != nil:
		r.fail("photo", err.Error(), "Exchange answered, but not with a photo photosync can serve")
		return nil, false
	case info.Status == photo.StatusDeleted && chained:
		r.pass("photo", "blank photo: "+email+" deleted their photo on purpose")
	case info.Status == photo.StatusDeleted:
		r.fail("photo", "blank photo: "+email+" deleted their photo on purpose; the placeholder is served",
			"the owner can upload a new photo in Outlook on the web (or Set-UserPhoto on Exchange)")
	case info.Status == photo.StatusNoPhoto && chained:
		r.pass("photo", "404: Exchange has no photo for "+email+"; the next source is asked")
	case info.Status == photo.StatusNoPhoto:
		r.fail("photo", "404: Exchange has no photo for "+email, "upload one in Outlook on the web, or Set-UserPhoto on Exchange")
	default:
		r.pass("photo", fmt.Sprintf("%d bytes %s, ETag %q", info.Size, info.ContentType, info.ETag))
	}
	return x, true
}

// doctorChain asks the configured sources in order, as a pull does, and
// prints what each answered, which were not asked and why, and what is
// served in the end.
func doctorChain(ctx context.Context, r *report, cfg configs.Config, x *exchangeParts, email, size string) bool {
	sec, err := loadSecrets(cfg)
	var sources []photo.Source
	if err == nil {
		sources, err = buildSources(cfg, sec, x, slog.New(slog.DiscardHandler))
	}
	if err != nil {
		r.fail("sources", err.Error(), "correct the section of the source named above")
		r.skip("chain")
		return false
	}
	defer closeSources(sources)
	dec := photo.NewDecoder(photo.Limits{MaxPixels: cfg.Photos.MaxPixels, DecodeMemory: int64(cfg.Photos.DecodeMemory)})
	answers := photo.Trace(ctx, sources, email, size, dec)
	if len(answers) == 0 {
		r.fail("chain", "sources is empty: nothing is asked", "list at least one source under sources")
		return false
	}
	var none []string
	for i, src := range sources {
		if i >= len(answers) {
			r.note(src.Name(), "not asked: "+answers[len(answers)-1].Source+" "+endedBy(answers[len(answers)-1]))
			continue
		}
		a := answers[i]
		switch {
		case a.Err != nil:
			r.fail(a.Source, strings.TrimRight(a.Err.Error(), ": "), sourceFix(a.Source, a.Err))
		case a.Result.Status == photo.StatusPhoto:
			r.pass(a.Source, fmt.Sprintf("photo: %d bytes %s%s", len(a.Result.Body), a.Result.ContentType, etagNote(a.Result.ETag)))
		case a.Result.Status == photo.StatusDeleted:
			r.pass(a.Source, email+" deleted their photo on purpose: no other source is asked")
		default:
			none = append(none, a.Source)
			r.pass(a.Source, "no photo for "+email)
		}
	}
	last := answers[len(answers)-1]
	had := ""
	if len(none) > 0 {
		had = "; no photo at " + strings.Join(none, ", ")
	}
	switch {
	case last.Err != nil:
		r.fail("chain", "source "+last.Source+" failed: the error timer (photos.error_expiration) starts and no lower source is asked",
			"fix the "+last.Source+" step above; an outage never falls through to an older or lower photo")
	case last.Result.Status == photo.StatusPhoto:
		r.pass("chain", "served from "+last.Source+had)
	case last.Result.Status == photo.StatusDeleted:
		r.fail("chain", "the placeholder is served: "+last.Source+" says the photo was deleted on purpose"+had,
			"the owner can upload a new photo; photosync does not bring back one they removed")
	default:
		r.fail("chain", "the placeholder is served: no source has a photo for "+email,
			"upload a photo in Outlook on the web (or Set-UserPhoto), or set thumbnailPhoto in the directory")
	}
	return !r.failed
}

// endedBy says why the walk stopped at a.
func endedBy(a photo.Answer) string {
	switch {
	case a.Err != nil:
		return "failed"
	case a.Result.Status == photo.StatusDeleted:
		return "says the photo was deleted on purpose"
	}
	return "answered with a photo"
}

// sourceFix is the fix printed when a source fails with err.
func sourceFix(name string, err error) string {
	var ua x509.UnknownAuthorityError
	switch {
	case errors.As(err, &ua) && name == configs.SourceDirectory:
		return "add the CA that issued the directory's certificate to directory.ca_file (PEM)"
	case errors.As(err, &ua) && name == configs.SourceGraph:
		return "add the CA that issued Graph's certificate to graph.ca_file (PEM)"
	}
	switch {
	case errors.Is(err, directory.ErrBind):
		return "the directory refused the bind: check directory.bind_dn and its password (bind_password or bind_password_env)"
	case errors.Is(err, directory.ErrConnect):
		return "the directory cannot be reached: check directory.url (host, port, ldap:// or ldaps://) and the firewall"
	case errors.Is(err, directory.ErrAmbiguous):
		return "two directory entries carry this address in directory.match_attributes: make it unique or narrow directory.base_dn"
	case errors.Is(err, graph.ErrUnauthorized):
		return "Graph refused our credential: check graph.tenant, client_id and the secret or certificate, and that the app has User.Read.All (application) with admin consent"
	}
	switch name {
	case configs.SourceDirectory:
		return "check directory.url, bind_dn and its password, and that the account may read base_dn"
	case configs.SourceGraph:
		return "check graph.tenant, client_id and the credential, and that the app has User.Read.All (application) with admin consent"
	}
	return "see the " + name + " steps above"
}

func etagNote(etag string) string {
	if etag == "" {
		return ""
	}
	return fmt.Sprintf(", ETag %q", etag)
}

// findings is what Exchange's challenge says, without the fix (printed on
// its own line).
func findings(ch oauth.Challenge, issuer string) string {
	var out []string
	for _, f := range ch.Explain(issuer) {
		if !strings.HasPrefix(f, "likely fix: ") {
			out = append(out, f)
		}
	}
	return strings.Join(out, "; ")
}

// tokenFix is the fix for a rejected token.
func tokenFix(ch oauth.Challenge) string {
	for _, f := range ch.Explain("") {
		if fix, ok := strings.CutPrefix(f, "likely fix: "); ok {
			return fix
		}
	}
	return "register photosync as a partner application (photosync trust prints the commands), then run doctor again"
}

func hops(s autodiscover.Settings) string {
	if len(s.Redirects) == 0 {
		return ""
	}
	return " after " + strings.Join(s.Redirects, ", ")
}

func isPhotoContentError(err error) bool {
	return errors.Is(err, photo.ErrNotImage) || errors.Is(err, photo.ErrTooLarge)
}

func withPort(host string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	return net.JoinHostPort(host, "443")
}

// checkTLS makes a TLS connection to host with client's TLS settings and
// describes the certificate seen.
func checkTLS(ctx context.Context, client *http.Client, host string) (string, error) {
	var cfg *tls.Config
	if tr, ok := client.Transport.(*http.Transport); ok && tr.TLSClientConfig != nil {
		cfg = tr.TLSClientConfig.Clone()
	} else {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	addr := withPort(host)
	name, _, _ := net.SplitHostPort(addr)
	cfg.ServerName = name
	d := tls.Dialer{Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("tls to %s: %w", addr, err)
	}
	defer conn.Close()
	st := conn.(*tls.Conn).ConnectionState()
	leaf := st.PeerCertificates[0]
	return fmt.Sprintf("%s: %s, certificate %q from %q, valid until %s", addr, tls.VersionName(st.Version),
		leaf.Subject.CommonName, leaf.Issuer.CommonName, leaf.NotAfter.UTC().Format(time.DateOnly)), nil
}
