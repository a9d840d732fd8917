package directory_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"net"
	"strings"
	"testing"
	"time"

	"photosync/internal/testpki"
	"photosync/sync/directory"
	"photosync/sync/directory/directorytest"
	"photosync/sync/photo"
	"photosync/sync/photo/phototest"
)

// jpegOf draws a w×w JPEG of one colour.
func jpegOf(t *testing.T, w int, c color.Color) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, w))
	for i := range w * w {
		img.Set(i%w, i/w, c)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// newSource is a Source on srv's ldap:// URL with opts' other fields.
func newSource(t *testing.T, opts directory.Options) *directory.Source {
	t.Helper()
	if opts.BindDN == "" {
		opts.BindDN, opts.BindPassword = directorytest.BindDN, directorytest.Password
	}
	opts.BaseDN = directorytest.BaseDN
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	s, err := directory.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestSourceAgainstSlapd(t *testing.T) {
	srv := directorytest.Start(t)
	thumb := jpegOf(t, 96, color.RGBA{R: 200, A: 255})
	jpegPhoto := jpegOf(t, 120, color.RGBA{B: 200, A: 255})
	srv.AddPerson(directorytest.Person{UID: "adele", Mail: "adele@contoso.com", ThumbnailPhoto: thumb, JPEGPhoto: jpegPhoto})
	srv.AddPerson(directorytest.Person{UID: "bob", Mail: "bob@contoso.com", UPN: "bob.upn@contoso.com", JPEGPhoto: jpegPhoto})
	srv.AddPerson(directorytest.Person{UID: "carol", Mail: "carol@contoso.com", DisplayName: "Carol Ortiz"})
	srv.AddPerson(directorytest.Person{UID: "dan", Mail: "dan@contoso.com", ThumbnailPhoto: []byte("not an image at all")})
	srv.AddPerson(directorytest.Person{UID: "twin1", Mail: "twin@contoso.com"})
	srv.AddPerson(directorytest.Person{UID: "twin2", Mail: "twin@contoso.com"})

	dir := newSource(t, directory.Options{URL: srv.URL})
	if dir.Name() != "directory" {
		t.Errorf("Name() = %q", dir.Name())
	}

	tests := []struct {
		name   string
		owner  string
		size   string
		status photo.Status
		body   []byte
		err    error
	}{
		{"thumbnailPhoto wins over jpegPhoto", "adele@contoso.com", "HR96x96", photo.StatusPhoto, thumb, nil},
		{"every size gets the same bytes", "adele@contoso.com", "HR648x648", photo.StatusPhoto, thumb, nil},
		{"jpegPhoto, found by userPrincipalName", "bob.upn@contoso.com", "HR96x96", photo.StatusPhoto, jpegPhoto, nil},
		{"person without a photo: their displayName", "carol@contoso.com", "HR96x96", photo.StatusNoPhoto, nil, nil},
		{"unknown person", "nobody@contoso.com", "HR96x96", photo.StatusNoPhoto, nil, nil},
		{"filter metacharacters are escaped", "*", "HR96x96", photo.StatusNoPhoto, nil, nil},
		{"filter injection is escaped", "x)(mail=adele@contoso.com", "HR96x96", photo.StatusNoPhoto, nil, nil},
		{"a photo attribute that is no image", "dan@contoso.com", "HR96x96", 0, nil, photo.ErrNotImage},
		{"two entries with the address", "twin@contoso.com", "HR96x96", 0, nil, directory.ErrAmbiguous},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := dir.Photo(ctx, tt.owner, tt.size, "")
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !strings.HasPrefix(err.Error(), "directory: ") {
					t.Fatalf("err = %v, want %v prefixed directory:", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Photo: %v", err)
			}
			if res.Status != tt.status || !bytes.Equal(res.Body, tt.body) {
				t.Fatalf("got %v with %d bytes, want %v with %d bytes", res.Status, len(res.Body), tt.status, len(tt.body))
			}
			if wantName := strings.HasSuffix(tt.name, "displayName"); wantName != (res.Name == "Carol Ortiz") {
				t.Errorf("name %q", res.Name)
			}
			if tt.body != nil && res.ContentType != "image/jpeg" {
				t.Errorf("content type %q, want image/jpeg", res.ContentType)
			}
		})
	}

	t.Run("hostile photo attributes fail the walk's checks", func(t *testing.T) {
		for _, h := range []struct {
			uid  string
			body []byte
			want error
		}{
			{"giant", phototest.GiantPNG(100000, 100000), photo.ErrTooManyPixels},
			{"bomb", phototest.JPEGBomb(8000, 8000), photo.ErrTooManyPixels},
			{"page", append([]byte("\xff\xd8\xff\xe0"), phototest.HTML...), photo.ErrUndecodable},
		} {
			srv.AddPerson(directorytest.Person{UID: h.uid, Mail: h.uid + "@contoso.com", ThumbnailPhoto: h.body})
			_, err := photo.Walk(context.Background(), []photo.Source{dir}, h.uid+"@contoso.com", "HR96x96", "", "", nil, nil)
			if !errors.Is(err, h.want) || !strings.HasPrefix(err.Error(), "directory: ") {
				t.Errorf("%s: Walk = %v, want directory: … %v", h.uid, err, h.want)
			}
		}
	})

	t.Run("same bytes revalidate as not modified", func(t *testing.T) {
		ctx := context.Background()
		first, err := dir.Photo(ctx, "adele@contoso.com", "HR96x96", "")
		if err != nil || first.ETag == "" {
			t.Fatalf("first: %v, ETag %q", err, first.ETag)
		}
		again, err := dir.Photo(ctx, "adele@contoso.com", "HR240x240", first.ETag)
		if err != nil || again.Status != photo.StatusNotModified || again.ETag != first.ETag {
			t.Fatalf("again: %v, status %v; want not modified", err, again.Status)
		}
		other, err := dir.Photo(ctx, "bob@contoso.com", "HR96x96", first.ETag)
		if err != nil || other.Status != photo.StatusPhoto {
			t.Fatalf("other bytes: %v, status %v; want the photo", err, other.Status)
		}
	})

	t.Run("max bytes bounds the photo", func(t *testing.T) {
		small := newSource(t, directory.Options{URL: srv.URL, MaxBytes: int64(len(thumb) - 1)})
		_, err := small.Photo(context.Background(), "adele@contoso.com", "HR96x96", "")
		if !errors.Is(err, photo.ErrTooLarge) || !strings.HasPrefix(err.Error(), "directory: thumbnailPhoto") {
			t.Fatalf("err = %v, want photo.ErrTooLarge naming thumbnailPhoto", err)
		}
		exact := newSource(t, directory.Options{URL: srv.URL, MaxBytes: int64(len(thumb))})
		if res, err := exact.Photo(context.Background(), "adele@contoso.com", "HR96x96", ""); err != nil || !bytes.Equal(res.Body, thumb) {
			t.Fatalf("at the limit: %v, %d bytes; want the thumbnail", err, len(res.Body))
		}
	})

	t.Run("attribute names are case-insensitive", func(t *testing.T) {
		d := newSource(t, directory.Options{URL: srv.URL, MatchAttributes: []string{"MAIL"}, PhotoAttributes: []string{"jpegphoto"}})
		res, err := d.Photo(context.Background(), "adele@contoso.com", "HR96x96", "")
		if err != nil || !bytes.Equal(res.Body, jpegPhoto) {
			t.Fatalf("%v, %d bytes; want the jpegPhoto", err, len(res.Body))
		}
	})

	t.Run("ldaps verifies the directory's certificate", func(t *testing.T) {
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(srv.CAPEM) {
			t.Fatal("directorytest CA does not parse")
		}
		other, err := testpki.New("another CA")
		if err != nil {
			t.Fatal(err)
		}
		otherRoots := x509.NewCertPool()
		otherRoots.AppendCertsFromPEM(other.CAPEM)
		for _, tt := range []struct {
			name  string
			roots *x509.CertPool
			fails bool
		}{
			{"trusted CA", roots, false},
			{"system roots only", nil, true},
			{"another CA", otherRoots, true},
		} {
			d := newSource(t, directory.Options{URL: srv.LDAPSURL, RootCAs: tt.roots})
			res, err := d.Photo(context.Background(), "adele@contoso.com", "HR96x96", "")
			var ua x509.UnknownAuthorityError
			switch {
			case !tt.fails && (err != nil || !bytes.Equal(res.Body, thumb)):
				t.Errorf("%s: %v, %d bytes; want the thumbnail", tt.name, err, len(res.Body))
			case tt.fails && (!errors.Is(err, directory.ErrConnect) || !errors.As(err, &ua)):
				t.Errorf("%s: err = %v, want ErrConnect with an x509.UnknownAuthorityError", tt.name, err)
			}
		}
	})

	t.Run("a refused bind is ErrBind", func(t *testing.T) {
		bad := newSource(t, directory.Options{URL: srv.URL, BindDN: directorytest.BindDN, BindPassword: "wrong"})
		_, err := bad.Photo(context.Background(), "adele@contoso.com", "HR96x96", "")
		if !errors.Is(err, directory.ErrBind) || !strings.Contains(err.Error(), "Invalid Credentials") {
			t.Fatalf("err = %v, want ErrBind with Invalid Credentials", err)
		}
		if strings.Contains(err.Error(), "wrong") {
			t.Errorf("error %q shows the password", err)
		}
		if strings.Count(err.Error(), "directory:") != 1 {
			t.Errorf("error %q: want one directory: prefix", err)
		}
	})

	t.Run("a connection is pooled and reused", func(t *testing.T) {
		d := newSource(t, directory.Options{URL: srv.URL, PoolSize: 1})
		for range 3 {
			if _, err := d.Photo(context.Background(), "adele@contoso.com", "HR96x96", ""); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestSourceUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	d, err := directory.New(directory.Options{URL: "ldap://" + addr, BindDN: "cn=x", BindPassword: "p", BaseDN: "dc=x", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Photo(context.Background(), "adele@contoso.com", "HR96x96", ""); !errors.Is(err, directory.ErrConnect) {
		t.Fatalf("err = %v, want ErrConnect", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Photo(ctx, "adele@contoso.com", "HR96x96", ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("done ctx: err = %v, want context.Canceled", err)
	}
}

func TestNewChecksItsOptions(t *testing.T) {
	ok := directory.Options{URL: "ldaps://dc.contoso.com", BindDN: "cn=x", BindPassword: "p", BaseDN: "dc=x"}
	tests := []struct {
		name   string
		change func(*directory.Options)
		want   string
	}{
		{"http URL", func(o *directory.Options) { o.URL = "http://dc.contoso.com" }, "want ldap://"},
		{"no host", func(o *directory.Options) { o.URL = "ldap://" }, "want ldap://"},
		{"no password", func(o *directory.Options) { o.BindPassword = "" }, "bind DN and password"},
		{"no base", func(o *directory.Options) { o.BaseDN = "" }, "base DN"},
		{"filter in an attribute", func(o *directory.Options) { o.MatchAttributes = []string{"mail=*)(cn"} }, "not an LDAP attribute name"},
		{"option in an attribute", func(o *directory.Options) { o.PhotoAttributes = []string{"jpegPhoto;binary"} }, "not an LDAP attribute name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.change(&o)
			if _, err := directory.New(o); err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "directory: ") {
				t.Fatalf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
	if _, err := directory.New(ok); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	ok.MatchAttributes = []string{"2.5.4.3", "extension-Attribute1"}
	if _, err := directory.New(ok); err != nil {
		t.Fatalf("OID and hyphenated names: %v", err)
	}
}
