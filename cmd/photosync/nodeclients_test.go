package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	_ "image/jpeg"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"photosync/sync/photo"
)

// The JavaScript clients the suite drives photosync with, at the versions
// .ci/test installs with npm into the cache nodeClients looks in.
var nodeClientVersions = map[string]string{
	"@microsoft/microsoft-graph-client": "3.0.7",
	"ews-javascript-api":                "0.15.3",
}

// TestGraphJavaScriptClient drives the demo photosync with the Microsoft
// Graph JavaScript client, unmodified, as an application would: its
// baseUrl moved to photosync, defaultVersion v1.0. The photo in every
// response type the client offers, a size, the beta version, the
// profilePhoto metadata, /me for the viewer a trusted proxy names, a 304
// for a cached copy, and the errors the client turns into GraphErrors.
func TestGraphJavaScriptClient(t *testing.T) {
	node, modules := nodeClients(t)
	base := "http://" + startDemo(t)
	const nophoto = "lee.gu@contoso.com"
	out := runNodeScript(t, node, modules, "graph.js", base+"/", adeleAddr, alexAddr, nophoto)
	var got map[string]graphAnswer
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("graph.js printed %q: %v", out, err)
	}
	for _, name := range slices.Sorted(maps.Keys(got)) {
		t.Logf("%s: %s", name, got[name])
	}
	answer := func(name string) graphAnswer {
		t.Helper()
		a, ok := got[name]
		if !ok {
			t.Fatalf("graph.js did not run %s", name)
		}
		return a
	}

	// The photos, at the sizes asked for.
	photos := []struct {
		call string
		px   int
	}{
		{"blob", 648}, {"value", 648}, {"sized", 96}, {"beta", 48}, {"me", 648}, {"viewer", 648},
	}
	for _, p := range photos {
		a := answer(p.call)
		if !a.OK {
			t.Errorf("%s: the client threw %s; want the photo", p.call, a)
			continue
		}
		if w, h := jpegSize(t, a.Body); w != p.px || h != p.px {
			t.Errorf("%s: a %dx%d image, want %dx%d", p.call, w, h, p.px, p.px)
		}
	}
	if a := answer("blob"); a.Class != "Blob" || a.Type != "image/jpeg" || !bytes.Equal(a.Body, answer("value").Body) {
		t.Errorf("default response type: a %s of type %q; want a Blob of image/jpeg holding the ArrayBuffer's bytes", a.Class, a.Type)
	}
	// /me is the viewer the trusted proxy's header names.
	if me := answer("me").Body; !bytes.Equal(me, answer("viewer").Body) || bytes.Equal(me, answer("value").Body) {
		t.Errorf("/me/photo/$value for %s is not %s's own photo", alexAddr, alexAddr)
	}

	// The metadata, whose media ETag is the one photosync serves the bytes with.
	resp, _ := fetch(t, base+"/v1.0/users/"+adeleAddr+"/photo/$value")
	metadata := []struct {
		call, owner, id string
		px              int
		etag            string
	}{
		{"metadata", adeleAddr, "648X648", 648, resp.Header.Get("ETag")},
		{"sizedMetadata", adeleAddr, "240X240", 240, ""},
		{"meMetadata", alexAddr, "648X648", 648, ""},
	}
	for _, m := range metadata {
		a := answer(m.call)
		var p struct {
			Context   string `json:"@odata.context"`
			MediaType string `json:"@odata.mediaContentType"`
			MediaETag string `json:"@odata.mediaEtag"`
			ID        string `json:"id"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
		}
		if err := json.Unmarshal(a.JSON, &p); err != nil || !a.OK {
			t.Errorf("%s: %s (%v); want the profilePhoto entity", m.call, a, err)
			continue
		}
		if p.MediaType != "image/jpeg" || p.ID != m.id || p.Width != m.px || p.Height != m.px ||
			!strings.Contains(p.Context, "users('"+m.owner+"')") || p.MediaETag == "" || (m.etag != "" && p.MediaETag != m.etag) {
			t.Errorf("%s: %s; want %s's %s image/jpeg, media ETag %s", m.call, a.JSON, m.owner, m.id, m.etag)
		}
	}

	// A cached copy revalidated with the client's raw response.
	if a := answer("revalidate"); !a.OK || a.First != http.StatusOK || a.Status != http.StatusNotModified || a.ETag == "" {
		t.Errorf("revalidate: %s; want 200, then 304 for If-None-Match %s", a, a.ETag)
	}

	// Errors: GraphErrors with Graph's codes.
	errs := []struct {
		call     string
		status   int
		code     string // the GraphError's; empty: the client leaves it unread
		bodyCode string // in the body photosync sent
	}{
		{"noPhoto", http.StatusNotFound, "ImageNotFound", "ImageNotFound"},
		{"noPhotoMetadata", http.StatusNotFound, "ImageNotFound", "ImageNotFound"},
		{"anonymousMe", http.StatusUnauthorized, "InvalidAuthenticationToken", "InvalidAuthenticationToken"},
		{"badSize", http.StatusBadRequest, "ErrorInvalidSize", "ErrorInvalidSize"},
		// With ResponseType.ARRAYBUFFER the client does not decode an
		// error's body (for Graph itself neither): the code is in the body.
		{"noPhotoArrayBuffer", http.StatusNotFound, "", "ImageNotFound"},
	}
	for _, e := range errs {
		a := answer(e.call)
		if a.OK || !a.GraphError || a.StatusCode != e.status || a.Code != e.code {
			t.Errorf("%s: %s; want a GraphError %d with code %q", e.call, a, e.status, e.code)
		}
		if !strings.Contains(a.ErrorBody, `"code":"`+e.bodyCode+`"`) {
			t.Errorf("%s: the error's body %q is not Graph's JSON error", e.call, a.ErrorBody)
		}
	}
}

// A graphAnswer is what graph.js prints for one call.
type graphAnswer struct {
	OK         bool            `json:"ok"`
	Class      string          `json:"class,omitempty"`
	Type       string          `json:"type,omitempty"`
	Body       []byte          `json:"body,omitempty"` // base64 in the JSON
	JSON       json.RawMessage `json:"json,omitempty"`
	Status     int             `json:"status,omitempty"`
	First      int             `json:"first,omitempty"`
	ETag       string          `json:"etag,omitempty"`
	GraphError bool            `json:"graphError,omitempty"`
	StatusCode int             `json:"statusCode,omitempty"`
	Code       string          `json:"code,omitempty"`
	Message    string          `json:"message,omitempty"`
	ErrorBody  string          `json:"errorBody,omitempty"`
}

func (a graphAnswer) String() string {
	body := a.Body
	a.Body = nil
	b, _ := json.Marshal(a)
	if body != nil {
		return string(b) + " and " + strconv.Itoa(len(body)) + " bytes"
	}
	return string(b)
}

// TestEWSJavaScriptAPI drives photosync's Exchange REST photo URL with
// ews-javascript-api, unmodified: its ExchangeService pointed at
// photosync's /EWS/Exchange.asmx, each of the nine sizes asked for, then
// again with the ETag it got, quoted as sent and bare as some EWS clients
// send it. ews-javascript-api 0.15.3 has no GetUserPhoto of its own (its
// source lists the operation as not implemented), so the requests go
// through the HTTP layer ExchangeService sends everything with.
func TestEWSJavaScriptAPI(t *testing.T) {
	node, modules := nodeClients(t)
	base := "http://" + startDemo(t)
	const nophoto = "lee.gu@contoso.com"
	out := runNodeScript(t, node, modules, "ews.js", append([]string{base, adeleAddr, nophoto}, photo.Sizes...)...)
	type reply struct {
		Status        int    `json:"status"`
		ContentType   string `json:"contentType"`
		ContentLength int    `json:"contentLength"`
		ETag          string `json:"etag"`
		Expires       string `json:"expires"`
		CacheControl  string `json:"cacheControl"`
		Text          string `json:"text"`
	}
	var got struct {
		URL   string `json:"url"`
		Sizes map[string]struct {
			First, Quoted, Bare reply
		} `json:"sizes"`
		NoPhoto reply `json:"noPhoto"`
		NoSize  reply `json:"noSize"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("ews.js printed %q: %v", out, err)
	}
	if got.URL != base+"/EWS/Exchange.asmx" {
		t.Errorf("the service's Url is %q", got.URL)
	}
	etags := map[string]string{}
	for _, size := range photo.Sizes {
		r, ok := got.Sizes[size]
		if !ok {
			t.Errorf("%s: not asked for", size)
			continue
		}
		t.Logf("%s: %d %s, %d bytes, ETag %s, Expires %s; again: %d quoted, %d bare",
			size, r.First.Status, r.First.ContentType, r.First.ContentLength, r.First.ETag, r.First.Expires, r.Quoted.Status, r.Bare.Status)
		if r.First.Status != http.StatusOK || r.First.ContentType != "image/jpeg" || r.First.ContentLength == 0 || r.First.ETag == "" {
			t.Errorf("%s: %+v; want a JPEG with an ETag", size, r.First)
		}
		if other, dup := etags[r.First.ETag]; dup {
			t.Errorf("%s has the ETag of %s", size, other)
		}
		etags[r.First.ETag] = size
		wantExpires(t, size, r.First.Expires, r.First.CacheControl)
		if r.Quoted.Status != http.StatusNotModified || r.Bare.Status != http.StatusNotModified {
			t.Errorf("%s again with its ETag: %d quoted, %d bare; want 304 for both", size, r.Quoted.Status, r.Bare.Status)
		}
	}
	if r := got.NoPhoto; r.Status != http.StatusNotFound || r.CacheControl != "no-cache" || r.Expires == "" {
		t.Errorf("no photo: %+v; want 404, no-cache and Expires", r)
	}
	if r := got.NoSize; r.Status != http.StatusBadRequest || !strings.Contains(r.Text, "size is required") {
		t.Errorf("no size: %+v; want 400 size is required", r)
	}
}

// wantExpires checks that expires, an HTTP date, is where cacheControl's
// max-age ends.
func wantExpires(t *testing.T, size, expires, cacheControl string) {
	t.Helper()
	at, err := http.ParseTime(expires)
	if err != nil {
		t.Errorf("%s: Expires %q: %v", size, expires, err)
		return
	}
	resp := &http.Response{Header: http.Header{"Cache-Control": {cacheControl}}}
	want := time.Now().Add(time.Duration(maxAge(t, resp)) * time.Second)
	if d := at.Sub(want); d < -time.Minute || d > time.Minute {
		t.Errorf("%s: Expires %s, %s from the end of %s", size, expires, d, cacheControl)
	}
}

// jpegSize returns the width and height of the JPEG b.
func jpegSize(t *testing.T, b []byte) (int, int) {
	t.Helper()
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil || format != "jpeg" {
		t.Errorf("not a JPEG (%d bytes, %q): %v", len(b), format, err)
		return 0, 0
	}
	return cfg.Width, cfg.Height
}

// nodeClients finds node and the node_modules directory .ci/test installs
// the pinned clients into, or skips (fails, with
// PHOTOSYNC_REQUIRE_NODE_CLIENTS=1) saying why.
func nodeClients(t *testing.T) (node, modules string) {
	t.Helper()
	var problems []string
	node, err := exec.LookPath("node")
	if err != nil {
		problems = append(problems, "node is not on $PATH")
	}
	if cache, err := os.UserCacheDir(); err != nil {
		problems = append(problems, "no cache directory: "+err.Error())
	} else {
		modules = filepath.Join(cache, "photosync", "node", "node_modules")
		for _, pkg := range slices.Sorted(maps.Keys(nodeClientVersions)) {
			version := nodeClientVersions[pkg]
			var meta struct{ Version string }
			b, err := os.ReadFile(filepath.Join(modules, pkg, "package.json"))
			if err == nil {
				err = json.Unmarshal(b, &meta)
			}
			if err != nil || meta.Version != version {
				problems = append(problems, pkg+"@"+version+" is not in "+modules)
			}
		}
	}
	if len(problems) == 0 {
		return node, modules
	}
	msg := strings.Join(problems, "; ") + " (.ci/test installs them: npm install --prefix ~/.cache/photosync/node " +
		"@microsoft/microsoft-graph-client@" + nodeClientVersions["@microsoft/microsoft-graph-client"] +
		" ews-javascript-api@" + nodeClientVersions["ews-javascript-api"] + ")"
	if os.Getenv("PHOTOSYNC_REQUIRE_NODE_CLIENTS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return "", ""
}

// runNodeScript copies testdata/nodeclients/name into a temporary
// directory, runs it with node and the clients in modules, and returns what
// it printed.
func runNodeScript(t *testing.T, node, modules, name string, args ...string) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "nodeclients", name))
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), name)
	writeTestFile(t, script, string(src))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\n%s", name, err, stderr.String())
	}
	return stdout.Bytes()
}
