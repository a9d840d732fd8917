package sync

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"photosync/store"
)

// Directory is an LDAP directory (Active Directory, OpenLDAP) as a Source:
// it binds with a service account, finds the owner by address and reads
// their thumbnailPhoto or jpegPhoto. The directory holds one photo per
// person, so every size gets the same bytes. Connections are kept in a
// small pool and re-dialled when one breaks. Safe for concurrent use.
type Directory struct {
	// URL is ldap://host[:port] or ldaps://host[:port]. Required.
	URL string
	// BindDN and BindPassword are the service account. Required: an
	// anonymous directory is not asked for people's photos.
	BindDN, BindPassword string
	// BaseDN is where people are searched. Required.
	BaseDN string
	// MatchAttributes are the attributes compared with the owner's
	// address. Default: mail, userPrincipalName.
	MatchAttributes []string
	// PhotoAttributes are read in order; the first present wins. Default:
	// thumbnailPhoto, jpegPhoto.
	PhotoAttributes []string
	// TLS configures ldaps:// (verification stays on). Nil: system roots.
	TLS *tls.Config
	// Timeout bounds dialling, binding and each search. Default: 5s.
	Timeout time.Duration
	// MaxBytes bounds a photo; a larger one is an error. Default: 256 KiB
	// (AD allows 100 KB for thumbnailPhoto).
	MaxBytes int
	// PoolSize is how many idle connections are kept. Default: 4.
	PoolSize int

	pool chan *ldap.Conn
}

// NewDirectory checks d and returns it ready for use.
func NewDirectory(d Directory) (*Directory, error) {
	u, err := url.Parse(d.URL)
	switch {
	case err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "":
		return nil, fmt.Errorf("directory: URL %q: want ldap://host or ldaps://host", d.URL)
	case d.BindDN == "" || d.BindPassword == "":
		return nil, errors.New("directory: a bind DN and password are required")
	case d.BaseDN == "":
		return nil, errors.New("directory: a base DN is required")
	}
	if len(d.MatchAttributes) == 0 {
		d.MatchAttributes = []string{"mail", "userPrincipalName"}
	}
	if len(d.PhotoAttributes) == 0 {
		d.PhotoAttributes = []string{"thumbnailPhoto", "jpegPhoto"}
	}
	if d.Timeout <= 0 {
		d.Timeout = 5 * time.Second
	}
	if d.MaxBytes <= 0 {
		d.MaxBytes = 256 << 10
	}
	if d.PoolSize <= 0 {
		d.PoolSize = 4
	}
	d.pool = make(chan *ldap.Conn, d.PoolSize)
	return &d, nil
}

// Name returns "directory".
func (d *Directory) Name() string { return "directory" }

// Close closes the idle connections.
func (d *Directory) Close() {
	for {
		select {
		case c := <-d.pool:
			c.Close()
		default:
			return
		}
	}
}

// Photo looks owner up and returns their directory photo. etag is the
// checksum of the bytes served last: unchanged bytes answer
// SourceNotModified.
func (d *Directory) Photo(ctx context.Context, owner, size, etag string) (SourceResult, error) {
	conn, err := d.conn(ctx)
	if err != nil {
		return SourceResult{}, err
	}
	res, err := d.search(ctx, conn, owner)
	if err != nil {
		conn.Close() // a failed connection is never pooled
		return SourceResult{}, err
	}
	d.put(conn)
	if len(res.Body) > 0 && etag != "" && etag == res.ETag {
		return SourceResult{Status: SourceNotModified, ETag: etag}, nil
	}
	return res, nil
}

func (d *Directory) search(ctx context.Context, conn *ldap.Conn, owner string) (SourceResult, error) {
	var filter strings.Builder
	filter.WriteString("(|")
	for _, a := range d.MatchAttributes {
		fmt.Fprintf(&filter, "(%s=%s)", a, ldap.EscapeFilter(owner))
	}
	filter.WriteString(")")
	timeLimit := int(d.Timeout / time.Second)
	if dl, ok := ctx.Deadline(); ok {
		conn.SetTimeout(min(d.Timeout, time.Until(dl)))
	}
	req := ldap.NewSearchRequest(d.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		2, max(timeLimit, 1), false, filter.String(), d.PhotoAttributes, nil)
	sr, err := conn.Search(req)
	if err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			return SourceResult{}, errors.New("directory: more than one entry matches the address")
		}
		return SourceResult{}, fmt.Errorf("directory: searching: %w", err)
	}
	switch len(sr.Entries) {
	case 0:
		return SourceResult{Status: SourceNoPhoto}, nil
	case 1:
	default:
		return SourceResult{}, errors.New("directory: more than one entry matches the address")
	}
	for _, a := range d.PhotoAttributes {
		b := sr.Entries[0].GetRawAttributeValue(a)
		if len(b) == 0 {
			continue
		}
		if len(b) > d.MaxBytes {
			return SourceResult{}, fmt.Errorf("%w: %s of %d bytes, limit %d", ErrTooLarge, a, len(b), d.MaxBytes)
		}
		ct, ok := SniffImage(b)
		if !ok {
			return SourceResult{}, fmt.Errorf("%w: directory attribute %s", ErrNotImage, a)
		}
		return SourceResult{Status: SourcePhoto, Body: b, ContentType: ct, ETag: store.Checksum(b)}, nil
	}
	return SourceResult{Status: SourceNoPhoto}, nil
}

// conn takes an idle connection, or dials and binds a new one.
func (d *Directory) conn(ctx context.Context) (*ldap.Conn, error) {
	select {
	case c := <-d.pool:
		if !c.IsClosing() {
			return c, nil
		}
		c.Close()
	default:
	}
	dialer := &net.Dialer{Timeout: d.Timeout}
	if dl, ok := ctx.Deadline(); ok {
		dialer.Deadline = dl
	}
	opts := []ldap.DialOpt{ldap.DialWithDialer(dialer)}
	if d.TLS != nil {
		opts = append(opts, ldap.DialWithTLSConfig(d.TLS))
	}
	c, err := ldap.DialURL(d.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("directory: connecting: %w", err)
	}
	c.SetTimeout(d.Timeout)
	if err := c.Bind(d.BindDN, d.BindPassword); err != nil {
		c.Close()
		return nil, fmt.Errorf("directory: bind as %q: %w", d.BindDN, err)
	}
	return c, nil
}

// put returns a connection to the pool, or closes it when the pool is full.
func (d *Directory) put(c *ldap.Conn) {
	c.SetTimeout(d.Timeout)
	select {
	case d.pool <- c:
	default:
		c.Close()
	}
}

var _ Source = (*Directory)(nil)
var _ Source = ExchangeSource{}
