// Package exchangetest runs a strict, in-process simulator of an Exchange 2013
// server for photosync's tests and its demo, in the manner of net/http/httptest.
//
// The model: a Server is one Exchange host reached over HTTPS only, with its
// own generated CA. It holds a set of mailboxes (User), each with an optional
// mailbox photo, an optional AD thumbnailPhoto and a "deleted on purpose"
// flag. It trusts exactly one partner application (photosync), whose auth
// metadata document it fetches from Options.PartnerMetadataURL, as
// New-PartnerApplication -AuthMetadataUrl does. Every call to Autodiscover or
// GetUserPhoto must carry a server-to-server user-context token (an unsigned
// outer token wrapping an RS256 actor token signed by a certificate from that
// metadata), and the simulator checks it the way MS-XOAUTH describes: one
// failed check means 401, with the reason in x-ms-diagnostics.
//
// Photos are drawn procedurally at the exact size asked for, so a test can
// decode the JPEG and check its size; SetPhoto draws a new version with new
// colours and a new ETag. The simulator records every request it sees and can
// inject faults (error statuses, throttling, delays) into GetUserPhoto.
//
// The package deliberately imports none of photosync's own client code, so a
// bug in the client cannot be masked by sharing it with the server.
package exchangetest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Well-known principals of the S2S protocol ([MS-XOAUTH], https://learn.microsoft.com/en-us/openspecs/exchange_server_protocols/ms-xoauth/).
const (
	// ExchangeClientID is Exchange's application id; it is the client id in
	// every audience the simulator accepts.
	ExchangeClientID = "00000002-0000-0ff1-ce00-000000000000"
	// ACSClientID is the id of the Access Control Service, named in the
	// trusted_issuers of the 401 challenge.
	ACSClientID = "00000001-0000-0000-c000-000000000000"
)

// Request kinds recorded in Request.Kind.
const (
	KindPhoto        = "photo"        // GET …/EWS/Exchange.asmx/s/GetUserPhoto
	KindAutodiscover = "autodiscover" // POST /autodiscover/autodiscover.svc
	KindProbe        = "probe"        // GET /autodiscover/autodiscover.xml (header probe)
	KindPOX          = "pox"          // POST /autodiscover/autodiscover.xml
	KindMetadata     = "metadata"     // GET /autodiscover/metadata/json/1
	KindECP          = "ecp"          // GET /ecp/PersonalSettings/EditAccount.aspx
	KindOther        = "other"        // any other path: 404
)

const (
	photoPath        = "/EWS/Exchange.asmx/s/GetUserPhoto"
	autodiscoverPath = "/autodiscover/autodiscover.svc"
	probePath        = "/autodiscover/autodiscover.xml"
	metadataPath     = "/autodiscover/metadata/json/1"
	ecpPath          = "/ecp/PersonalSettings/EditAccount.aspx"
)

// A User is one mailbox known to the simulator.
type User struct {
	Email string // SMTP address; matched case-insensitively
	Name  string // display name
	// Photo says the mailbox holds a photo (drawn by the simulator).
	Photo bool
	// ADThumbnail says AD holds a thumbnailPhoto (grey, 96x96). It is served
	// when there is no mailbox photo, and always for HR48x48, as Exchange does.
	ADThumbnail bool
	// Deleted says the photo was deleted on purpose: GetUserPhoto answers 404
	// and AD is never consulted. DeletePhoto sets it.
	Deleted bool
	// MaxSize is the largest stored mailbox photo in pixels; larger requests
	// get this size. Zero means 648.
	MaxSize int
}

// An AutodiscoverBehavior changes how Autodiscover answers for one mailbox.
type AutodiscoverBehavior struct {
	// ErrorCode, when set, is the per-user ErrorCode returned instead of the
	// settings: "InvalidUser", "RedirectAddress", "RedirectUrl", "ServerBusy"
	// or any other ErrorCode of GetUserSettings
	// (https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/errorcode-soap).
	ErrorCode string
	// ErrorMessage overrides the per-user ErrorMessage. Empty means a
	// message in Exchange's wording.
	ErrorMessage string
	// RedirectTarget is the address (RedirectAddress) or URL (RedirectUrl)
	// sent back in RedirectTarget.
	RedirectTarget string
	// OnHost, when set, limits the behavior to requests that came to this
	// host name (Options.Hostnames); others get the normal answer. Empty:
	// every host.
	OnHost string
	// OmitSettings are answered in UserSettingErrors as
	// SettingIsNotAvailable instead of a value.
	OmitSettings []string
	// Settings replace the values of the named settings, such as an
	// ExternalPhotosUrl on another host.
	Settings map[string]string
}

// Options configure a Server. The zero value is usable: no users, no partner.
type Options struct {
	// PartnerMetadataURL is where the partner application (photosync)
	// publishes its auth metadata; http:// is allowed. It can be set later
	// with SetPartnerMetadataURL. Empty: every token is rejected.
	PartnerMetadataURL string
	// MetadataClient fetches the partner metadata. Nil means a client with a
	// 10s timeout.
	MetadataClient *http.Client
	// Users are the mailboxes present at start.
	Users []User
	// Now is the clock for token lifetimes, metadata refetching and
	// back-off windows. Nil means time.Now.
	Now func() time.Time
	// Skew is the clock skew allowed on a token's nbf. Zero means 5m.
	Skew time.Duration
	// ChallengeRealm, when set, adds realm="…" to the 401 Bearer challenge
	// (a test mode; Exchange's own challenge has no realm).
	ChallengeRealm string
	// POXOnly makes the SOAP service answer 404, as an Exchange that offers
	// only POX autodiscover.xml does.
	POXOnly bool
	// LightPhotos draws each size once and makes every mailbox's photo its
	// own by a JPEG comment naming the address and version, so nothing is
	// kept per mailbox: for load runs with 100,000 mailboxes, where drawing
	// and caching one picture each would make the simulator the heavy side.
	// ETags and the PhotoBytes contract are unchanged.
	LightPhotos bool
	// Hostnames are extra DNS names the server answers as: they go into its
	// TLS certificate, and Client and DialContext connect them (any port) to
	// the server, without DNS. URLs the server hands out use the Host a
	// request came to, so a test can build a deployment of several names.
	Hostnames []string
	// Addr is the listen address. Empty means "127.0.0.1:0".
	Addr string
	// Logger receives debug lines about requests. Nil discards.
	Logger *slog.Logger
}

// A Request is one request the simulator has answered.
type Request struct {
	Kind        string // one of the Kind constants
	Method      string
	Host        string // the Host header: the name the client called
	Path        string
	Email       string // photo: email parameter; autodiscover: mailboxes, comma-separated
	Size        string // photo: size parameter as sent
	IfNoneMatch string
	Status      int
	BodyBytes   int    // response body bytes written
	Actor       string // acting user from a valid token, lower-case
	TokenError  string // why the token was rejected, if it was
	// DuringBackoff is set on a photo request that arrived while a
	// Retry-After the simulator had sent was still running.
	DuringBackoff bool

	abort bool // the handler cut the connection (a body fault)
}

type userState struct {
	User
	version int
}

type faults struct {
	status    int
	remaining int // <0: until cleared
	delay     time.Duration
	body      BodyFault
	etag      string // sent instead of the real ETag, when not empty
}

// A Server is a running Exchange simulator. Its methods are safe for
// concurrent use.
type Server struct {
	opts     Options
	log      *slog.Logger
	now      func() time.Time
	skew     time.Duration
	ln       net.Listener
	srv      *http.Server
	done     chan struct{}
	ctx      context.Context
	cancel   context.CancelFunc
	caPEM    []byte
	client   *http.Client
	signCert *x509.Certificate // Exchange's own auth certificate, published in its metadata
	metaID   string

	mu           sync.Mutex
	users        map[string]*userState
	order        []string // lower-case emails in insertion order
	behaviors    map[string]AutodiscoverBehavior
	faults       faults
	deletedBlank bool // a deleted photo is served as a 0-byte JPEG, not a 404
	backoffUntil time.Time
	requests     []Request
	partnerURL   string
	photos       map[photoKey][]byte

	meta metadataCache

	// Test seams, guarded by mu. afterDelay, when set by a test, is called once a photo request's
	// delay has ended, with the context error if the wait was cut short.
	afterDelay func(err error)
	// delayStarted, when set by a test, is called when a delay begins.
	delayStarted func()
}

// NewServer starts a simulator listening on loopback with a fresh CA and a
// leaf certificate valid for localhost, 127.0.0.1 and ::1. It panics if the
// listener or the keys cannot be created, as httptest.NewServer does.
func NewServer(opts Options) *Server {
	s := &Server{
		opts:      opts,
		log:       opts.Logger,
		now:       opts.Now,
		skew:      opts.Skew,
		done:      make(chan struct{}),
		users:     make(map[string]*userState),
		behaviors: make(map[string]AutodiscoverBehavior),
		photos:    make(map[photoKey][]byte),
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.skew == 0 {
		s.skew = 5 * time.Minute
	}
	s.partnerURL = opts.PartnerMetadataURL
	for _, u := range opts.Users {
		s.AddUser(u)
	}

	pki, err := newPKI(opts.Hostnames)
	if err != nil {
		panic(fmt.Sprintf("exchangetest: generating certificates: %v", err))
	}
	s.caPEM = pki.caPEM
	s.signCert = pki.signCert
	s.metaID = pki.metadataID

	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		panic(fmt.Sprintf("exchangetest: listening on %s: %v", addr, err))
	}
	s.ln = ln
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pki.leaf}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
	}
	s.client = &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pki.caPool},
		ForceAttemptHTTP2: true,
		DialContext:       s.DialContext,
	}}
	go func() {
		defer close(s.done)
		if err := s.srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("exchangetest server stopped", "err", err)
		}
	}()
	return s
}

// Close stops the server, cutting short any delayed request, and waits for
// it to stop.
func (s *Server) Close() {
	s.cancel()
	_ = s.srv.Close()
	<-s.done
	if t, ok := s.client.Transport.(*http.Transport); ok {
		t.CloseIdleConnections()
	}
}

// URL returns the server's base URL, https://127.0.0.1:port.
func (s *Server) URL() string { return "https://" + s.Host() }

// Host returns host:port of the server: the autodiscover domain to configure.
func (s *Server) Host() string { return s.ln.Addr().String() }

// DialContext connects to the server when addr's host is localhost, a
// loopback address or one of Options.Hostnames, whatever the port; any
// other host is refused, so a test never reaches the network. Put it in a
// client's http.Transport to reach the server under its hostnames.
func (s *Server) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("exchangetest: dial %q: %w", addr, err)
	}
	known := host == "localhost" || host == "127.0.0.1" || host == "::1"
	for _, h := range s.opts.Hostnames {
		known = known || strings.EqualFold(h, host)
	}
	if !known {
		return nil, fmt.Errorf("exchangetest: dial %s: no such host in the simulator", host)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, s.ln.Addr().String())
}

// CACertPEM returns the PEM of the CA that signed the server's certificate.
func (s *Server) CACertPEM() []byte { return append([]byte(nil), s.caPEM...) }

// Client returns an HTTP client that trusts the server's CA.
func (s *Server) Client() *http.Client { return s.client }

// SigningCertificate returns Exchange's own auth certificate, the one its
// metadata document publishes.
func (s *Server) SigningCertificate() *x509.Certificate { return s.signCert }

// SetPartnerMetadataURL points the server at the partner's metadata
// document and forgets what it had fetched before.
func (s *Server) SetPartnerMetadataURL(u string) {
	s.mu.Lock()
	s.partnerURL = u
	s.mu.Unlock()
	s.meta.reset()
}

func (s *Server) partnerMetadataURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.partnerURL
}

// AddUser adds a mailbox, replacing one with the same address.
func (s *Server) AddUser(u User) {
	key := strings.ToLower(strings.TrimSpace(u.Email))
	if u.MaxSize <= 0 {
		u.MaxSize = 648
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.users[key]
	version := 1
	if ok {
		version = old.version + 1
	} else {
		s.order = append(s.order, key)
	}
	s.users[key] = &userState{User: u, version: version}
}

// SetPhoto gives the mailbox a new photo: a new drawing and a new ETag. It
// undoes DeletePhoto. It does nothing for an unknown address.
func (s *Server) SetPhoto(email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.users[strings.ToLower(email)]; ok {
		u.Photo, u.Deleted = true, false
		u.version++
	}
}

// DeletePhoto deletes the mailbox photo on purpose: GetUserPhoto answers 404
// and the AD thumbnail is no longer consulted.
func (s *Server) DeletePhoto(email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.users[strings.ToLower(email)]; ok {
		u.Photo, u.Deleted = false, true
		u.version++
	}
}

// RemoveUser removes the mailbox; it becomes unknown.
func (s *Server) RemoveUser(email string) {
	key := strings.ToLower(email)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[key]; !ok {
		return
	}
	delete(s.users, key)
	for i, k := range s.order {
		if k == key {
			s.order = append(s.order[:i:i], s.order[i+1:]...)
			break
		}
	}
}

// Users returns the mailboxes in the order they were added.
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, 0, len(s.order))
	for _, k := range s.order {
		out = append(out, s.users[k].User)
	}
	return out
}

func (s *Server) user(email string) (userState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[strings.ToLower(email)]
	if !ok {
		return userState{}, false
	}
	return *u, true
}

// SetAutodiscover sets how Autodiscover answers for one mailbox; the zero
// AutodiscoverBehavior restores the normal answer.
func (s *Server) SetAutodiscover(email string, b AutodiscoverBehavior) {
	key := strings.ToLower(email)
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.ErrorCode == "" && b.ErrorMessage == "" && b.RedirectTarget == "" && len(b.OmitSettings) == 0 && len(b.Settings) == 0 {
		delete(s.behaviors, key)
		return
	}
	b.OmitSettings = append([]string(nil), b.OmitSettings...)
	b.Settings = maps.Clone(b.Settings)
	s.behaviors[key] = b
}

func (s *Server) behavior(email string) AutodiscoverBehavior {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.behaviors[strings.ToLower(email)]
}

// FailPhotos makes the next n GetUserPhoto requests answer status (n < 0:
// until ClearFaults). 503 and 429 carry Retry-After: 1; 500 carries an EWS
// ErrorServerBusy fault with BackOffMilliseconds 1000, as EWS throttling
// does (https://learn.microsoft.com/en-us/exchange/client-developer/exchange-web-services/ews-throttling-in-exchange).
func (s *Server) FailPhotos(status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.status, s.faults.remaining = status, n
}

// SetDeletedBlank chooses how GetUserPhoto answers for a photo deleted on
// purpose. Off (the default): 404, as for no photo. On: 200 image/jpeg with
// an empty body, the "blank photo" Exchange returns for a deleted photo
// (Remove-UserPhoto, https://learn.microsoft.com/en-us/powershell/module/exchange/remove-userphoto),
// read from the 0-byte JPEG its photo cache keeps for it. Which of the two
// REST answers is not documented, so the simulator offers both; AD is never
// consulted either way.
func (s *Server) SetDeletedBlank(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deletedBlank = on
}

// SetPhotoDelay makes each GetUserPhoto request wait d before it is
// answered; the wait ends early when the client goes away.
func (s *Server) SetPhotoDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.delay = d
}

// ClearFaults removes every injected fault and delay.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = faults{}
	s.backoffUntil = time.Time{}
}

// Requests returns a copy of the request log, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// PhotoRequests counts GetUserPhoto requests, whatever their status.
func (s *Server) PhotoRequests() int { return s.countPhotos(func(Request) bool { return true }) }

// PhotoRequestsFor counts GetUserPhoto requests for one target address.
func (s *Server) PhotoRequestsFor(email string) int {
	return s.countPhotos(func(r Request) bool { return strings.EqualFold(r.Email, email) })
}

// BackoffViolations counts GetUserPhoto requests that arrived while a
// Retry-After or BackOffMilliseconds the simulator had sent was running.
func (s *Server) BackoffViolations() int {
	return s.countPhotos(func(r Request) bool { return r.DuringBackoff })
}

func (s *Server) countPhotos(match func(Request) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if r.Kind == KindPhoto && match(r) {
			n++
		}
	}
	return n
}

// ResetRequests empties the request log.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// recorder counts what a handler writes.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

// Unwrap lets http.ResponseController reach the connection (to flush).
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += n
	return n, err
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w}
	entry := Request{Method: r.Method, Host: r.Host, Path: r.URL.Path, IfNoneMatch: r.Header.Get("If-None-Match")}
	switch r.URL.Path {
	case photoPath:
		entry.Kind = KindPhoto
		s.servePhoto(rec, r, &entry)
	case autodiscoverPath:
		entry.Kind = KindAutodiscover
		if s.opts.POXOnly {
			http.NotFound(rec, r)
			break
		}
		s.serveAutodiscover(rec, r, &entry)
	case probePath:
		if r.Method == http.MethodPost {
			entry.Kind = KindPOX
			s.servePOX(rec, r, &entry)
			break
		}
		entry.Kind = KindProbe
		s.serveProbe(rec, r)
	case metadataPath:
		entry.Kind = KindMetadata
		s.serveMetadata(rec, r)
	case ecpPath:
		entry.Kind = KindECP
		s.serveECP(rec, r)
	default:
		entry.Kind = KindOther
		http.NotFound(rec, r)
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	entry.Status, entry.BodyBytes = rec.status, rec.bytes
	s.mu.Lock()
	s.requests = append(s.requests, entry)
	s.mu.Unlock()
	s.log.Debug("exchangetest request", "kind", entry.Kind, "method", entry.Method,
		"path", entry.Path, "email", entry.Email, "status", entry.Status, "token_error", entry.TokenError)
	if entry.abort {
		panic(http.ErrAbortHandler) // net/http drops the connection, quietly
	}
}

// challenge answers 401 with Exchange's Bearer challenge and the reason in
// x-ms-diagnostics.
func (s *Server) challenge(w http.ResponseWriter, err error) {
	c := fmt.Sprintf(`Bearer client_id=%q, trusted_issuers="%s@*"`, ExchangeClientID, ACSClientID)
	if s.opts.ChallengeRealm != "" {
		c += fmt.Sprintf(`, realm=%q`, s.opts.ChallengeRealm)
	}
	h := w.Header()
	h.Add("WWW-Authenticate", c)
	h.Add("WWW-Authenticate", `Basic Realm=""`)
	if err != nil {
		h.Set("x-ms-diagnostics", diagnostics(err))
	}
	http.Error(w, "401 - Unauthorized: Access is denied due to invalid credentials.", http.StatusUnauthorized)
}

// authenticate validates the request's token, answering 401 when it fails.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, entry *Request) (string, bool) {
	actor, err := s.ValidateToken(r)
	if err != nil {
		entry.TokenError = err.Error()
		s.log.Debug("exchangetest token rejected", "kind", entry.Kind, "reason", err.Error())
		s.challenge(w, err)
		return "", false
	}
	entry.Actor = actor
	return actor, true
}
