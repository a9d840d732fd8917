// Package directory is an LDAP directory (Active Directory, OpenLDAP) as a
// photo source. It binds with a service account, finds the person whose
// mail or userPrincipalName is the owner's address, and reads their
// thumbnailPhoto (Active Directory's) or jpegPhoto (inetOrgPerson's,
// RFC 2798). A directory holds one photo per person, so every size gets the
// same bytes; the engine scales them.
//
// Connections are kept in a small pool and dialled again when one breaks;
// a connection that failed a request is never pooled. Everything the
// directory sends back is untrusted: its photo is sniffed and bounded, its
// error text cleaned before it reaches an error or a log line.
//
// go-ldap writes to its package logger only in a connection's debug mode,
// which this package never turns on, so nothing is logged behind slog's back.
package directory

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"photosync/internal/untrusted"
	"photosync/sync/photo"
)

// Errors a caller may react to, matched with errors.Is. Each is the start
// of the message of the error that wraps it.
var (
	// ErrConnect: the directory could not be reached, or its TLS
	// certificate was refused (errors.As finds the x509 error).
	ErrConnect = errors.New("directory: cannot connect")
	// ErrBind: the directory refused the service account's bind (wrong
	// DN or password, account locked or expired).
	ErrBind = errors.New("directory: bind refused")
	// ErrAmbiguous: more than one entry matches the owner's address, so
	// no one of them is taken to be the owner.
	ErrAmbiguous = errors.New("directory: more than one entry matches the address")
)

// Defaults of Options (directory.timeout, directory.pool_size).
const (
	DefaultTimeout  = 5 * time.Second
	DefaultPoolSize = 4
)

// Options configure a Source. A zero field takes the default its comment
// states; New is the one place that applies them.
type Options struct {
	// URL is ldap://host[:port] or ldaps://host[:port]. Required.
	URL string
	// BindDN and BindPassword are the service account. Required: an
	// anonymous directory is not asked for people's photos.
	BindDN, BindPassword string
	// BaseDN is where people are searched, with the whole subtree.
	// Required.
	BaseDN string
	// MatchAttributes are the attributes compared with the owner's
	// address; any one matching finds the person. Default: mail,
	// userPrincipalName.
	MatchAttributes []string
	// PhotoAttributes are read in order; the first present wins.
	// Default: thumbnailPhoto, jpegPhoto.
	PhotoAttributes []string
	// RootCAs verify an ldaps:// directory's certificate (verification is
	// never turned off). Default: the system roots.
	RootCAs *x509.CertPool
	// Timeout bounds dialling, binding and each search, within the
	// caller's deadline. Default: 5s.
	Timeout time.Duration
	// PoolSize is how many idle connections are kept. Default: 4.
	PoolSize int
	// MaxBytes bounds a photo; a larger one is an error wrapping
	// photo.ErrTooLarge. Active Directory caps thumbnailPhoto at 100 KB
	// (https://learn.microsoft.com/windows/win32/adschema/a-thumbnailphoto).
	// Default: photo.DefaultMaxBytes.
	MaxBytes int64
	// Logger receives what the source logs. Default: nothing is logged.
	Logger *slog.Logger
}

// Source is an LDAP directory as a photo.Source. Safe for concurrent use;
// Close it when done.
type Source struct {
	opts Options
	tls  *tls.Config
	pool chan *ldap.Conn
}

var _ photo.Source = (*Source)(nil)

// attributeName is an attribute description without options: a descr
// (keystring) or a numeric OID (RFC 4512 §1.4). Anything else would change
// the search filter's meaning.
var attributeName = regexp.MustCompile(`^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)$`)

// New checks opts, applies the defaults and returns a Source ready for use.
// It does not dial: the first Photo does.
func New(opts Options) (*Source, error) {
	u, err := url.Parse(opts.URL)
	switch {
	case err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "":
		return nil, fmt.Errorf("directory: URL %q: want ldap://host or ldaps://host", opts.URL)
	case opts.BindDN == "" || opts.BindPassword == "":
		return nil, errors.New("directory: a bind DN and password are required")
	case opts.BaseDN == "":
		return nil, errors.New("directory: a base DN is required")
	}
	if len(opts.MatchAttributes) == 0 {
		opts.MatchAttributes = []string{"mail", "userPrincipalName"}
	}
	if len(opts.PhotoAttributes) == 0 {
		opts.PhotoAttributes = []string{"thumbnailPhoto", "jpegPhoto"}
	}
	for _, a := range append(append([]string(nil), opts.MatchAttributes...), opts.PhotoAttributes...) {
		if !attributeName.MatchString(a) {
			return nil, fmt.Errorf("directory: attribute %q is not an LDAP attribute name", a)
		}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.PoolSize <= 0 {
		opts.PoolSize = DefaultPoolSize
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = photo.DefaultMaxBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Source{
		opts: opts,
		tls:  &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12},
		pool: make(chan *ldap.Conn, opts.PoolSize),
	}, nil
}

// Name returns "directory".
func (s *Source) Name() string { return "directory" }

// Close closes the idle connections. A Photo running meanwhile still
// finishes; its connection is closed or pooled as usual.
func (s *Source) Close() {
	for {
		select {
		case c := <-s.pool:
			c.Close()
		default:
			return
		}
	}
}

// Photo looks owner up and returns their directory photo, the same for
// every size. etag is the checksum of the bytes served last: unchanged
// bytes answer photo.StatusNotModified. No entry, or an entry without a
// photo attribute, is photo.StatusNoPhoto.
func (s *Source) Photo(ctx context.Context, owner, size, etag string) (photo.Result, error) {
	conn, err := s.conn(ctx)
	if err != nil {
		return photo.Result{}, err
	}
	res, err := s.search(ctx, conn, owner)
	if err != nil {
		conn.Close() // a connection that failed a request is never pooled
		return photo.Result{}, err
	}
	s.put(conn)
	if len(res.Body) > 0 && etag != "" && etag == res.ETag {
		return photo.Result{Status: photo.StatusNotModified, ETag: etag, Name: res.Name}, nil
	}
	return res, nil
}

func (s *Source) search(ctx context.Context, conn *ldap.Conn, owner string) (photo.Result, error) {
	timeout, err := s.timeout(ctx)
	if err != nil {
		return photo.Result{}, err
	}
	conn.SetTimeout(timeout)
	// (|(mail=owner)(userPrincipalName=owner)), the owner escaped as an
	// assertion value (RFC 4515 §3), so no address widens the search.
	var filter strings.Builder
	filter.WriteString("(|")
	for _, a := range s.opts.MatchAttributes {
		fmt.Fprintf(&filter, "(%s=%s)", a, ldap.EscapeFilter(owner))
	}
	filter.WriteString(")")
	// A size limit of 2 is enough to tell one match from several: the
	// server stops with sizeLimitExceeded (RFC 4511 §4.5.1.4, §4.5.2).
	req := ldap.NewSearchRequest(s.opts.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		2, max(int(timeout/time.Second), 1), false, filter.String(), append([]string{displayNameAttr}, s.opts.PhotoAttributes...), nil)
	sr, err := conn.Search(req)
	if err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			return photo.Result{}, ErrAmbiguous
		}
		return photo.Result{}, fmt.Errorf("directory: searching: %w", remote(err))
	}
	switch len(sr.Entries) {
	case 0:
		return photo.Result{Status: photo.StatusNoPhoto}, nil
	case 1:
	default:
		return photo.Result{}, ErrAmbiguous
	}
	// The entry's displayName (inetOrgPerson's, and Active Directory's),
	// for the initials placeholder when there is no photo.
	name := untrusted.Text(sr.Entries[0].GetEqualFoldAttributeValue(displayNameAttr), 256)
	for _, a := range s.opts.PhotoAttributes {
		// Attribute names are case-insensitive (RFC 4512 §2.5); a
		// server may answer with its own spelling.
		b := sr.Entries[0].GetEqualFoldRawAttributeValue(a)
		if len(b) == 0 {
			continue
		}
		if int64(len(b)) > s.opts.MaxBytes {
			return photo.Result{}, fmt.Errorf("directory: %s is %d bytes, limit %d: %w", a, len(b), s.opts.MaxBytes, photo.ErrTooLarge)
		}
		ct, ok := photo.Sniff(b)
		if !ok {
			return photo.Result{}, fmt.Errorf("directory: %s: %w", a, photo.ErrNotImage)
		}
		return photo.Result{Status: photo.StatusPhoto, Body: b, ContentType: ct, ETag: checksum(b), Name: name}, nil
	}
	return photo.Result{Status: photo.StatusNoPhoto, Name: name}, nil
}

// displayNameAttr is the attribute read for the owner's display name.
const displayNameAttr = "displayName"

// conn takes an idle connection, or dials and binds a new one.
func (s *Source) conn(ctx context.Context) (*ldap.Conn, error) {
	for {
		var c *ldap.Conn
		select {
		case c = <-s.pool:
		default:
		}
		if c == nil {
			break
		}
		if !c.IsClosing() {
			return c, nil
		}
		// The directory closed it while it was idle (Active Directory
		// does after its MaxConnIdleTime).
		s.opts.Logger.Debug("dropping a closed directory connection")
		c.Close()
	}
	timeout, err := s.timeout(ctx)
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: timeout}
	c, err := ldap.DialURL(s.opts.URL, ldap.DialWithDialer(dialer), ldap.DialWithTLSConfig(s.tls))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConnect, remote(err))
	}
	c.SetTimeout(timeout)
	if err := c.Bind(s.opts.BindDN, s.opts.BindPassword); err != nil {
		c.Close()
		var le *ldap.Error
		if errors.As(err, &le) && le.ResultCode == ldap.ErrorNetwork {
			return nil, fmt.Errorf("%w: binding: %w", ErrConnect, remote(err))
		}
		return nil, fmt.Errorf("%w (as %q): %w", ErrBind, s.opts.BindDN, remote(err))
	}
	return c, nil
}

// timeout is Timeout cut to ctx's deadline; a ctx already done is its
// error, since go-ldap reads a timeout that is not positive as none at all.
func (s *Source) timeout(ctx context.Context) (time.Duration, error) {
	t := s.opts.Timeout
	if dl, ok := ctx.Deadline(); ok {
		t = min(t, time.Until(dl))
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("directory: %w", err)
	}
	if t <= 0 {
		return 0, fmt.Errorf("directory: %w", context.DeadlineExceeded)
	}
	return t, nil
}

// put returns a connection to the pool, or closes it when the pool is full.
func (s *Source) put(c *ldap.Conn) {
	select {
	case s.pool <- c:
	default:
		c.Close()
	}
}

// checksum is the hex SHA-256 of b, the same value store.Checksum gives, so
// the ETags of copies stored before still revalidate.
func checksum(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// remoteError is an error whose text came from the directory (its
// diagnostic message) or the network: Error cleans it with untrusted.Text,
// Unwrap keeps the cause for errors.Is and errors.As.
type remoteError struct{ err error }

func (e remoteError) Error() string { return untrusted.Text(e.err.Error(), 0) }
func (e remoteError) Unwrap() error { return e.err }

func remote(err error) error { return remoteError{err} }
