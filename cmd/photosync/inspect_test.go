package main

import (
	"strings"
	"testing"
	"time"

	psync "photosync/sync"
	"photosync/sync/photo"
)

// TestInspectionShowsAutodiscover checks the human output of a report
// that carries a cached Autodiscover answer (as the admin API's does), and
// that text from Exchange cannot put control characters on a terminal.
func TestInspectionShowsAutodiscover(t *testing.T) {
	until := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		ad   *photo.Lookup
		want []string
		not  []string
	}{
		{"none cached", nil, nil, []string{"autodiscover"}},
		{"answer", &photo.Lookup{PhotosURL: "https://mail.contoso.com/EWS/Exchange.asmx/s",
			EcpPhotoURL: "https://mail.contoso.com/ecp/x", Redirects: []string{"302 https://autodiscover.contoso.com/"}, CachedUntil: until},
			[]string{"autodiscover (cached until 2026-11-30T12:00:00Z):", "ExternalPhotosUrl   https://mail.contoso.com/EWS/Exchange.asmx/s",
				"ExternalEcpPhotoUrl https://mail.contoso.com/ecp/x", "via 302 https://autodiscover.contoso.com/"}, nil},
		{"failure", &photo.Lookup{Error: "invalid user\x1b[31m", CachedUntil: until},
			[]string{"failed: invalid user?[31m"}, []string{"\x1b"}},
	}
	for _, tt := range tests {
		var b strings.Builder
		in := inspection{Store: "embedded x", Report: psync.Report{Owner: "adele@contoso.com", Autodiscover: tt.ad}}
		if err := writeInspection(&b, in); err != nil {
			t.Fatal(err)
		}
		for _, w := range tt.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s: output lacks %q:\n%s", tt.name, w, b.String())
			}
		}
		for _, n := range tt.not {
			if strings.Contains(b.String(), n) {
				t.Errorf("%s: output has %q:\n%s", tt.name, n, b.String())
			}
		}
	}
}
