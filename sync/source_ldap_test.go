package sync_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"image"
	"image/color"
	"image/jpeg"
	"strings"
	"testing"
	"time"

	psync "photosync/sync"
	"photosync/sync/ldaptest"
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

func TestDirectoryAgainstSlapd(t *testing.T) {
	srv := ldaptest.Start(t)
	thumb := jpegOf(t, 96, color.RGBA{R: 200, A: 255})
	photo := jpegOf(t, 120, color.RGBA{B: 200, A: 255})
	srv.AddPerson(ldaptest.Person{UID: "adele", Mail: "adele@contoso.com", ThumbnailPhoto: thumb, JPEGPhoto: photo})
	srv.AddPerson(ldaptest.Person{UID: "bob", Mail: "bob@contoso.com", UPN: "bob.upn@contoso.com", JPEGPhoto: photo})
	srv.AddPerson(ldaptest.Person{UID: "carol", Mail: "carol@contoso.com"})

	dir, err := psync.NewDirectory(psync.Directory{URL: srv.URL, BindDN: ldaptest.BindDN,
		BindPassword: ldaptest.Password, BaseDN: ldaptest.BaseDN, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()

	tests := []struct {
		name   string
		owner  string
		etag   string
		status psync.SourceStatus
		body   []byte
	}{
		{"thumbnailPhoto wins over jpegPhoto", "adele@contoso.com", "", psync.SourcePhoto, thumb},
		{"jpegPhoto, found by userPrincipalName", "bob.upn@contoso.com", "", psync.SourcePhoto, photo},
		{"person without a photo", "carol@contoso.com", "", psync.SourceNoPhoto, nil},
		{"unknown person", "nobody@contoso.com", "", psync.SourceNoPhoto, nil},
		{"filter metacharacters are escaped", "*", "", psync.SourceNoPhoto, nil},
		{"filter injection is escaped", "x)(mail=adele@contoso.com", "", psync.SourceNoPhoto, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := dir.Photo(ctx, tt.owner, "HR96x96", tt.etag)
			if err != nil {
				t.Fatalf("Photo: %v", err)
			}
			if res.Status != tt.status || !bytes.Equal(res.Body, tt.body) {
				t.Fatalf("got %v with %d bytes, want %v with %d bytes", res.Status, len(res.Body), tt.status, len(tt.body))
			}
			if tt.body != nil && res.ContentType != "image/jpeg" {
				t.Errorf("content type %q, want image/jpeg", res.ContentType)
			}
		})
	}

	t.Run("same bytes revalidate as not modified", func(t *testing.T) {
		ctx := context.Background()
		first, err := dir.Photo(ctx, "adele@contoso.com", "HR96x96", "")
		if err != nil || first.ETag == "" {
			t.Fatalf("first: %v, ETag %q", err, first.ETag)
		}
		again, err := dir.Photo(ctx, "adele@contoso.com", "HR240x240", first.ETag)
		if err != nil || again.Status != psync.SourceNotModified {
			t.Fatalf("again: %v, status %v; want not modified", err, again.Status)
		}
	})

	t.Run("ldaps verifies the directory's certificate", func(t *testing.T) {
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(srv.CAPEM) {
			t.Fatal("ldaptest CA does not parse")
		}
		for _, tt := range []struct {
			name  string
			tls   *tls.Config
			fails string
		}{
			{"trusted CA", &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, ""},
			{"system roots only", nil, "certificate"},
			{"another name", &tls.Config{RootCAs: roots, ServerName: "ldap.contoso.com"}, "certificate"},
		} {
			d, err := psync.NewDirectory(psync.Directory{URL: srv.LDAPSURL, BindDN: ldaptest.BindDN,
				BindPassword: ldaptest.Password, BaseDN: ldaptest.BaseDN, TLS: tt.tls, Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			res, err := d.Photo(context.Background(), "adele@contoso.com", "HR96x96", "")
			d.Close()
			switch {
			case tt.fails == "" && (err != nil || !bytes.Equal(res.Body, thumb)):
				t.Errorf("%s: %v, %d bytes; want the thumbnail", tt.name, err, len(res.Body))
			case tt.fails != "" && (err == nil || !strings.Contains(err.Error(), tt.fails)):
				t.Errorf("%s: err = %v, want one about the %s", tt.name, err, tt.fails)
			}
		}
	})

	t.Run("bad bind is an error naming the step", func(t *testing.T) {
		bad, err := psync.NewDirectory(psync.Directory{URL: srv.URL, BindDN: ldaptest.BindDN,
			BindPassword: "wrong", BaseDN: ldaptest.BaseDN})
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.Photo(context.Background(), "adele@contoso.com", "HR96x96", "")
		if err == nil || !strings.Contains(err.Error(), "bind") || !strings.Contains(err.Error(), "Invalid Credentials") {
			t.Fatalf("err = %v, want a bind error with Invalid Credentials", err)
		}
		if strings.Contains(err.Error(), "wrong") {
			t.Errorf("error %q shows the password", err)
		}
	})
}

func TestNewDirectoryChecksItsOptions(t *testing.T) {
	tests := []struct {
		name string
		d    psync.Directory
		want string
	}{
		{"http URL", psync.Directory{URL: "http://dc.contoso.com", BindDN: "cn=x", BindPassword: "p", BaseDN: "dc=x"}, "want ldap://"},
		{"no password", psync.Directory{URL: "ldaps://dc.contoso.com", BindDN: "cn=x", BaseDN: "dc=x"}, "bind DN and password"},
		{"no base", psync.Directory{URL: "ldaps://dc.contoso.com", BindDN: "cn=x", BindPassword: "p"}, "base DN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := psync.NewDirectory(tt.d); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
}
