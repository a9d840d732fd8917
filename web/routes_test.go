package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"photosync/web"
)

// TestRoute: each URL's route name, the metrics label, as the handler
// serving it names it: the dialects by their own names, a wrong method by
// the route it was for, the application's requests as "upstream" in sidecar
// mode (its application is unreachable: the name is the same).
func TestRoute(t *testing.T) {
	e := newEnv(t, envOptions{})
	up, _ := url.Parse("http://127.0.0.1:1")
	full := web.New(e.engine, web.Options{Metadata: http.NotFoundHandler(), People: []web.Person{{Email: adele, Name: "Adele"}}})
	sidecar := web.New(e.engine, web.Options{Upstream: up})
	tests := []struct {
		method, target     string
		plain, withSidecar string // the name on full, on sidecar
	}{
		{"GET", "/photos/" + adele + "?size=HR48x48", "photo", "photo"},
		{"HEAD", "/photos/" + adele, "photo", "photo"},
		{"POST", "/photos/" + adele, "photo", "photo"},
		{"GET", "/photos/adele%2F@contoso.com", "photo", "photo"},
		{"GET", "/photos/edit", "edit", "edit"},
		{"GET", "/_layouts/15/userphoto.aspx?accountname=" + adele + "&size=S", "userphoto", "userphoto"},
		{"GET", "/_layouts/15/metadata/json/1", "metadata", "upstream"},
		{"GET", "/EWS/Exchange.asmx/s/GetUserPhoto?email=" + adele + "&size=HR96x96", "ews", "ews"},
		{"GET", "/users/" + adele + "/photo/$value", "graph", "graph"},
		{"GET", "/users/" + adele + "/photos/48x48/$value", "graph_sized", "graph_sized"},
		{"GET", "/v1.0/users/" + adele + "/photo/$value", "graph", "graph"},
		{"GET", "/beta/me/photo/$value", "graph", "graph"},
		{"GET", "/v1.0/me/photos/48x48/$value", "graph_sized", "graph_sized"},
		{"GET", "/v1.0/users/" + adele + "/photo", "graph_metadata", "graph_metadata"},
		{"GET", "/me/photos/96x96", "graph_metadata", "graph_metadata"},
		{"GET", "/v2.0/users/" + adele + "/photo", "other", "upstream"},
		{"GET", "/healthz", "healthz", "healthz"},
		{"GET", "/readyz", "readyz", "readyz"},
		{"GET", "/", "directory", "upstream"},
		{"POST", "/", "directory", "upstream"},
		{"GET", "/users/42/profile", "other", "upstream"},
		{"GET", "/photosx/adele", "other", "upstream"},
		{"GET", "/favicon.ico", "other", "upstream"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			if got := full.ServeRoute(httptest.NewRecorder(), httptest.NewRequest(tt.method, tt.target, nil)); got != tt.plain {
				t.Errorf("ServeRoute = %q, want %q", got, tt.plain)
			}
			if got := sidecar.ServeRoute(httptest.NewRecorder(), httptest.NewRequest(tt.method, tt.target, nil)); got != tt.withSidecar {
				t.Errorf("sidecar ServeRoute = %q, want %q", got, tt.withSidecar)
			}
		})
	}
}
