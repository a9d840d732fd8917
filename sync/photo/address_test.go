package photo_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"photosync/sync/photo"
)

func TestNormalizeEmail(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{"Adele.Vance@Contoso.com", "adele.vance@contoso.com", true},
		{"o'brien+tag@mail.contoso.co.uk", "o'brien+tag@mail.contoso.co.uk", true},
		{"", "", false},
		{"adele", "", false},
		{"@contoso.com", "", false},
		{"adele@", "", false},
		{"a@b@contoso.com", "", false},
		{".adele@contoso.com", "", false},
		{"ad..ele@contoso.com", "", false},
		{"adele@localhost", "", false},
		{"adele@-contoso.com", "", false},
		{"adele@contoso..com", "", false},
		{"../../etc/passwd@contoso.com", "", false},
		{"adele%2f@contoso.com", "", false},
		{"adele\\x@contoso.com", "", false},
		{"\"adele\"@contoso.com", "", false},
		{"Adele <adele@contoso.com>", "", false},
		{strings.Repeat("a", 65) + "@contoso.com", "", false},
		{"a@" + strings.Repeat("b", 250) + ".com", "", false},
	} {
		got, err := photo.NormalizeEmail(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestAccountEmail(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"adele@contoso.com", "adele@contoso.com"},
		{"i:0#.f|membership|Adele@Contoso.com", "adele@contoso.com"},
		{"i:0#.w|contoso\\adele", ""},
	} {
		got, _ := photo.AccountEmail(tt.in)
		if got != tt.want {
			t.Errorf("AccountEmail(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSizes(t *testing.T) {
	for _, tt := range []struct {
		in, canonical, graph string
		px                   int
	}{
		{"hr96X96", "HR96x96", "96x96", 96},
		{"HR648x648", "HR648x648", "648x648", 648},
		{"HR48x48", "HR48x48", "48x48", 48},
	} {
		c, ok := photo.CanonicalSize(tt.in)
		if !ok || c != tt.canonical {
			t.Errorf("CanonicalSize(%q) = %q, %v", tt.in, c, ok)
		}
		if g, ok := photo.GraphSize(c); !ok || g != tt.graph {
			t.Errorf("GraphSize(%q) = %q, %v", c, g, ok)
		}
		if back, ok := photo.FromGraphSize(tt.graph); !ok || back != c {
			t.Errorf("FromGraphSize(%q) = %q, %v", tt.graph, back, ok)
		}
		if px := photo.Pixels(c); px != tt.px {
			t.Errorf("Pixels(%q) = %d", c, px)
		}
	}
	for _, bad := range []string{"", "HR97x97", "96x96", "HR96x96x", "../HR96x96"} {
		if _, ok := photo.CanonicalSize(bad); ok {
			t.Errorf("CanonicalSize(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"", "97x97", "HR96x96", "x96"} {
		if _, ok := photo.FromGraphSize(bad); ok {
			t.Errorf("FromGraphSize(%q) accepted", bad)
		}
	}
	if photo.Sizes[len(photo.Sizes)-1] != photo.MasterSize {
		t.Error("MasterSize is not the largest size")
	}
}

func TestReadBody(t *testing.T) {
	for _, tt := range []struct {
		n, max int
		err    error
	}{
		{10, 10, nil},
		{11, 10, photo.ErrTooLarge},
		{0, 10, nil},
	} {
		b, err := photo.ReadBody(bytes.NewReader(make([]byte, tt.n)), int64(tt.max))
		if !errors.Is(err, tt.err) || (err == nil && len(b) != tt.n) {
			t.Errorf("ReadBody(%d bytes, max %d) = %d bytes, %v; want %v", tt.n, tt.max, len(b), err, tt.err)
		}
	}
}

func TestFoundLabel(t *testing.T) {
	for _, tt := range []struct {
		f    photo.Found
		want string
	}{
		{photo.Found{Status: photo.StatusPhoto, Source: "exchange"}, "exchange"},
		{photo.Found{Status: photo.StatusDeleted, Source: "exchange"}, "exchange: deleted on purpose"},
		{photo.Found{Status: photo.StatusNoPhoto, Source: "exchange, directory"}, "exchange, directory: no photo"},
		{photo.Found{}, ""},
	} {
		if got := tt.f.Label(); got != tt.want {
			t.Errorf("Label() = %q, want %q", got, tt.want)
		}
	}
}
