package autodiscover

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// seen is one request as the fake Exchange parsed it, by namespace URI.
type seen struct {
	Method, Host, Path, ContentType, Accept, Auth, SOAPAction string
	Version, Action, To                                       string
	Mailboxes, Settings                                       []string
	Raw                                                       string
}

// reqEnvelope reads a GetUserSettings request by namespace URI only.
type reqEnvelope struct {
	XMLName xml.Name `xml:"http://schemas.xmlsoap.org/soap/envelope/ Envelope"`
	Header  struct {
		Version string `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover RequestedServerVersion"`
		Action  string `xml:"http://www.w3.org/2005/08/addressing Action"`
		To      string `xml:"http://www.w3.org/2005/08/addressing To"`
	} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Header"`
	Body struct {
		Message struct {
			Request struct {
				Users struct {
					User []struct {
						Mailbox string `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover Mailbox"`
					} `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover User"`
				} `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover Users"`
				Settings struct {
					Setting []string `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover Setting"`
				} `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover RequestedSettings"`
			} `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover Request"`
		} `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover GetUserSettingsRequestMessage"`
	} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
}

// reply is a canned answer.
type reply struct {
	status int
	header http.Header
	body   string
}

// fake is an Autodiscover server with canned replies chosen by answer.
type fake struct {
	srv    *httptest.Server
	answer func(r seen) reply

	mu   sync.Mutex
	reqs []seen
}

func newFake(t *testing.T, answer func(r seen) reply) *fake {
	t.Helper()
	f := &fake{answer: answer}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	s := seen{
		Method: r.Method, Host: r.Host, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"),
		Accept: r.Header.Get("Accept"), Auth: r.Header.Get("Authorization"),
		SOAPAction: r.Header.Get("SOAPAction"), Raw: string(raw),
	}
	var env reqEnvelope
	if err := xml.Unmarshal(raw, &env); err == nil {
		s.Version, s.Action, s.To = env.Header.Version, env.Header.Action, env.Header.To
		for _, u := range env.Body.Message.Request.Users.User {
			s.Mailboxes = append(s.Mailboxes, u.Mailbox)
		}
		s.Settings = env.Body.Message.Request.Settings.Setting
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, s)
	f.mu.Unlock()

	rep := f.answer(s)
	for k, v := range rep.header {
		w.Header()[k] = v
	}
	if rep.status == 0 {
		rep.status = http.StatusOK
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	}
	w.WriteHeader(rep.status)
	_, _ = io.WriteString(w, rep.body)
}

func (f *fake) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

func (f *fake) host() string { return f.srv.Listener.Addr().String() }

func (f *fake) url(path string) string { return "https://" + f.host() + path }

// tokens records what it was asked for.
type tokens struct {
	mu    sync.Mutex
	calls []string // "user host"
}

func (tk *tokens) Token(_ context.Context, user, host string) (string, error) {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	tk.calls = append(tk.calls, user+" "+host)
	return "tok-" + user, nil
}

func newClient(t *testing.T, f *fake, tk TokenSource, mod func(*Options)) *Client {
	t.Helper()
	if tk == nil {
		tk = &tokens{}
	}
	// The fake answers on 127.0.0.1 and hands out contoso.com URLs.
	opts := Options{Domain: f.host(), Tokens: tk, HTTPClient: f.srv.Client(),
		AllowedHosts: Hosts{f.host(), "*.contoso.com"}}
	if mod != nil {
		mod(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// envelope wraps a Response body the way Exchange 2013 sends it: s: for SOAP,
// a: for WS-Addressing, default namespace for Autodiscover elements.
func envelope(response string) string {
	return `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:a="http://www.w3.org/2005/08/addressing">` +
		`<s:Header><a:Action s:mustUnderstand="1">http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettingsResponse</a:Action>` +
		`<h:ServerVersionInfo xmlns:h="http://schemas.microsoft.com/exchange/2010/Autodiscover" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">` +
		`<h:MajorVersion>15</h:MajorVersion><h:MinorVersion>0</h:MinorVersion><h:MajorBuildNumber>1497</h:MajorBuildNumber>` +
		`<h:MinorBuildNumber>2</h:MinorBuildNumber><h:Version>Exchange2013</h:Version></h:ServerVersionInfo></s:Header>` +
		`<s:Body><GetUserSettingsResponseMessage xmlns="http://schemas.microsoft.com/exchange/2010/Autodiscover">` +
		`<Response xmlns:i="http://www.w3.org/2001/XMLSchema-instance">` + response +
		`</Response></GetUserSettingsResponseMessage></s:Body></s:Envelope>`
}

// userAnswer is one UserResponse; target "" is sent as xsi:nil.
func userAnswer(code, message, target, settingErrors, settings string) string {
	rt := `<RedirectTarget i:nil="true"/>`
	if target != "" {
		rt = `<RedirectTarget>` + esc(target) + `</RedirectTarget>`
	}
	return envelope(`<ErrorCode>NoError</ErrorCode><ErrorMessage/><UserResponses><UserResponse>` +
		`<ErrorCode>` + code + `</ErrorCode><ErrorMessage>` + esc(message) + `</ErrorMessage>` + rt +
		`<UserSettingErrors>` + settingErrors + `</UserSettingErrors>` +
		`<UserSettings>` + settings + `</UserSettings></UserResponse></UserResponses>`)
}

func str(name, value string) string {
	return `<UserSetting i:type="StringSetting"><Name>` + name + `</Name><Value>` + esc(value) + `</Value></UserSetting>`
}

func notAvailable(name string) string {
	return `<UserSettingError><ErrorCode>SettingIsNotAvailable</ErrorCode>` +
		`<ErrorMessage>User setting '` + name + `' is not available. </ErrorMessage>` +
		`<SettingName>` + name + `</SettingName></UserSettingError>`
}

const (
	photos = "https://mail.contoso.com/EWS/Exchange.asmx/s"
	ecp    = "https://mail.contoso.com/ecp/PersonalSettings/EditAccount.aspx?chgPhoto=1&exsvurl=1&realm=contoso.com"
)

// allSettings is a full NoError answer for smtp.
func allSettings(smtp string) string {
	return userAnswer("NoError", "No error.", "", "",
		str("ExternalPhotosUrl", photos)+
			str("InternalPhotosUrl", "https://ex1.corp.contoso.com/EWS/Exchange.asmx/s")+
			str("ExternalEcpPhotoUrl", ecp)+
			str("InternalEcpPhotoUrl", "https://ex1.corp.contoso.com/ecp/PersonalSettings/EditAccount.aspx?chgPhoto=1")+
			str("ExternalEwsUrl", "https://mail.contoso.com/EWS/Exchange.asmx")+
			str("InternalEwsUrl", "https://ex1.corp.contoso.com/EWS/Exchange.asmx")+
			str("AutoDiscoverSMTPAddress", smtp))
}

func TestLookupHappyPath(t *testing.T) {
	f := newFake(t, func(r seen) reply { return reply{body: allSettings("Alice@contoso.com")} })
	tk := &tokens{}
	c := newClient(t, f, tk, nil)

	got, err := c.Lookup(context.Background(), " Alice@Contoso.com ")
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	want := Settings{
		Email:               "alice@contoso.com",
		SMTPAddress:         "Alice@contoso.com",
		ExternalPhotosURL:   photos,
		InternalPhotosURL:   "https://ex1.corp.contoso.com/EWS/Exchange.asmx/s",
		ExternalEcpPhotoURL: ecp,
		InternalEcpPhotoURL: "https://ex1.corp.contoso.com/ecp/PersonalSettings/EditAccount.aspx?chgPhoto=1",
		ExternalEWSURL:      "https://mail.contoso.com/EWS/Exchange.asmx",
		InternalEWSURL:      "https://ex1.corp.contoso.com/EWS/Exchange.asmx",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("settings:\n got %+v\nwant %+v", got, want)
	}
	if u, err := got.EcpPhotoURL(); err != nil || u != ecp {
		t.Errorf("EcpPhotoURL = %q, %v", u, err)
	}

	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	checks := []struct{ what, got, want string }{
		{"method", r.Method, http.MethodPost},
		{"path", r.Path, "/autodiscover/autodiscover.svc"},
		{"Content-Type", r.ContentType, "text/xml; charset=utf-8"},
		{"Accept", r.Accept, "text/xml"},
		{"Authorization", r.Auth, "Bearer tok-alice@contoso.com"},
		{"SOAPAction", r.SOAPAction, ""},
		{"RequestedServerVersion", r.Version, "Exchange2013"},
		{"wsa:Action", r.Action, "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings"},
		{"wsa:To", r.To, f.url("/autodiscover/autodiscover.svc")},
		{"mailboxes", strings.Join(r.Mailboxes, ","), "alice@contoso.com"},
		{"settings", strings.Join(r.Settings, ","), "ExternalPhotosUrl,InternalPhotosUrl,ExternalEcpPhotoUrl," +
			"InternalEcpPhotoUrl,ExternalEwsUrl,InternalEwsUrl,AutoDiscoverSMTPAddress,UserDisplayName"},
		{"token requests", strings.Join(tk.calls, ";"), "alice@contoso.com " + f.host()},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.what, ch.got, ch.want)
		}
	}
}

func TestLookupAnswers(t *testing.T) {
	deep := strings.Repeat("<x>", 100) + strings.Repeat("</x>", 100)
	tests := []struct {
		name      string
		rep       reply
		allowHTTP bool
		wantErr   error    // matched with errors.Is, when set
		wantMsg   []string // substrings of the error; none means success
		check     func(t *testing.T, s Settings)
	}{
		{
			name: "non-string settings skipped",
			rep: reply{body: userAnswer("NoError", "", "", "",
				`<UserSetting i:type="WebClientUrlCollectionSetting"><Name>ExternalEwsUrl</Name><WebClientUrls>`+
					`<WebClientUrl><AuthenticationMethods>Fba</AuthenticationMethods><Url>javascript:alert(1)</Url></WebClientUrl>`+
					`</WebClientUrls></UserSetting>`+
					`<UserSetting i:type="AlternateMailboxCollectionSetting"><Name>AlternateMailboxes</Name><AlternateMailboxes/></UserSetting>`+
					str("ExternalPhotosUrl", photos))},
			check: func(t *testing.T, s Settings) {
				if s.ExternalPhotosURL != photos || s.ExternalEWSURL != "" {
					t.Errorf("settings = %+v", s)
				}
			},
		},
		{
			name: "ExternalPhotosUrl absent",
			rep: reply{body: userAnswer("NoError", "", "", "",
				str("ExternalEwsUrl", "https://mail.contoso.com/EWS/Exchange.asmx"))},
			wantErr: ErrNoPhotosURL,
			wantMsg: []string{`ExternalPhotosUrl is missing for "alice@contoso.com"`, "absent",
				`"PhotosUrl or EcpPhotoUrl is null (from AutoDiscover)"`,
				"Set-WebServicesVirtualDirectory -ExternalUrl https://mail.example.com/EWS/Exchange.asmx"},
			check: func(t *testing.T, s Settings) {
				if s.ExternalEWSURL != "https://mail.contoso.com/EWS/Exchange.asmx" {
					t.Errorf("other settings not returned with ErrNoPhotosURL: %+v", s)
				}
			},
		},
		{
			name:    "ExternalPhotosUrl not available",
			rep:     reply{body: userAnswer("NoError", "", "", notAvailable("ExternalPhotosUrl"), "")},
			wantErr: ErrNoPhotosURL,
			wantMsg: []string{"ExternalPhotosUrl is missing", "SettingIsNotAvailable", "Set-WebServicesVirtualDirectory"},
		},
		{
			name: "ExternalEcpPhotoUrl not available is fine",
			rep: reply{body: userAnswer("NoError", "", "", notAvailable("ExternalEcpPhotoUrl"),
				str("ExternalPhotosUrl", photos))},
			check: func(t *testing.T, s Settings) {
				_, err := s.EcpPhotoURL()
				if !errors.Is(err, ErrNoEcpPhotoURL) ||
					!strings.Contains(err.Error(), "Set-EcpVirtualDirectory -ExternalUrl https://mail.example.com/ecp") {
					t.Errorf("EcpPhotoURL error = %v", err)
				}
			},
		},
		{
			name:    "InvalidUser",
			rep:     reply{body: userAnswer("InvalidUser", "Invalid user 'alice@contoso.com'", "", "", "")},
			wantErr: ErrInvalidUser,
			wantMsg: []string{`invalid user "alice@contoso.com"`},
		},
		{
			name:    "ServerBusy",
			rep:     reply{body: userAnswer("ServerBusy", "The server is too busy.", "", "", "")},
			wantErr: ErrServerBusy,
		},
		{
			name:    "other user error code",
			rep:     reply{body: userAnswer("NotFederated", "Not federated.", "", "", "")},
			wantMsg: []string{"autodiscover: NotFederated from https://", ": Not federated."},
		},
		{
			name:    "request-level error code",
			rep:     reply{body: envelope(`<ErrorCode>InvalidRequest</ErrorCode><ErrorMessage>Bad request.</ErrorMessage><UserResponses/>`)},
			wantMsg: []string{"autodiscover: InvalidRequest from https://", "/autodiscover/autodiscover.svc: Bad request."},
		},
		{
			name:    "HTTP 500 with SOAP fault",
			rep:     reply{status: 500, body: `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring xml:lang="en-US">The message could not be processed.</faultstring></s:Fault></s:Body></s:Envelope>`},
			wantMsg: []string{"/autodiscover/autodiscover.svc answered 500 Internal Server Error", "could not be processed"},
		},
		{
			name:    "HTTP 503",
			rep:     reply{status: 503, body: "busy"},
			wantMsg: []string{"answered 503 Service Unavailable"},
		},
		{
			name: "HTTP 401 with WWW-Authenticate",
			rep: reply{status: 401, header: http.Header{"Www-Authenticate": {
				`Bearer client_id="00000002-0000-0ff1-ce00-000000000000", trusted_issuers="00000001-0000-0000-c000-000000000000@*"`}}},
			wantErr: ErrUnauthorized,
			wantMsg: []string{`answered 401 Unauthorized (WWW-Authenticate: Bearer client_id="00000002-0000-0ff1-ce00-000000000000", trusted_issuers=`},
		},
		{
			name:    "HTTP 401 challenge sanitised",
			rep:     reply{status: 401, header: http.Header{"Www-Authenticate": {"Bearer\té" + strings.Repeat("x", 400)}}},
			wantErr: ErrUnauthorized,
			wantMsg: []string{"(WWW-Authenticate: Bearer é" + strings.Repeat("x", 292) + "…)"},
		},
		{
			name:    "SOAP fault in a 200",
			rep:     reply{body: `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>a:ActionNotSupported</faultcode><faultstring>no</faultstring></s:Fault></s:Body></s:Envelope>`},
			wantMsg: []string{"SOAP fault a:ActionNotSupported: no"},
		},
		{
			name:    "body too large",
			rep:     reply{body: userAnswer("NoError", strings.Repeat("x", 1<<20), "", "", str("ExternalPhotosUrl", photos))},
			wantMsg: []string{"body larger than 1048576 bytes"},
		},
		{
			name:    "DOCTYPE refused",
			rep:     reply{body: `<?xml version="1.0"?><!DOCTYPE s:Envelope [<!ENTITY x SYSTEM "file:///etc/passwd">]>` + allSettings("&x;")},
			wantMsg: []string{"DOCTYPE"},
		},
		{
			name:    "deep nesting refused",
			rep:     reply{body: userAnswer("NoError", "", "", "", str("ExternalPhotosUrl", photos)+deep)},
			wantMsg: []string{"nested deeper than 64"},
		},
		{
			name:    "not SOAP",
			rep:     reply{body: `<html><body>login</body></html>`},
			wantMsg: []string{"not a SOAP 1.1 envelope"},
		},
		{
			name:    "javascript photo URL",
			rep:     reply{body: userAnswer("NoError", "", "", "", str("ExternalPhotosUrl", "javascript:alert(1)"))},
			wantErr: ErrRefusedURL,
			wantMsg: []string{`ExternalPhotosUrl "javascript:alert(1)"`, "scheme javascript refused"},
		},
		{
			name:    "http photo URL without AllowHTTP",
			rep:     reply{body: userAnswer("NoError", "", "", "", str("ExternalPhotosUrl", "http://mail.contoso.com/EWS/Exchange.asmx/s"))},
			wantErr: ErrRefusedURL,
			wantMsg: []string{`ExternalPhotosUrl "http://mail.contoso.com/EWS/Exchange.asmx/s"`, "http refused"},
		},
		{
			name:      "http photo URL with AllowHTTP",
			allowHTTP: true,
			rep:       reply{body: userAnswer("NoError", "", "", "", str("ExternalPhotosUrl", "http://mail.contoso.com/EWS/Exchange.asmx/s"))},
			check: func(t *testing.T, s Settings) {
				if s.ExternalPhotosURL != "http://mail.contoso.com/EWS/Exchange.asmx/s" {
					t.Errorf("ExternalPhotosURL = %q", s.ExternalPhotosURL)
				}
			},
		},
		{
			name:    "photo URL with userinfo",
			rep:     reply{body: userAnswer("NoError", "", "", "", str("ExternalPhotosUrl", "https://evil:pw@mail.contoso.com/EWS/Exchange.asmx/s"))},
			wantErr: ErrRefusedURL,
			wantMsg: []string{`ExternalPhotosUrl "https://evil:pw@mail.contoso.com/EWS/Exchange.asmx/s"`, "userinfo refused"},
		},
		{
			name:    "relative photo URL",
			rep:     reply{body: userAnswer("NoError", "", "", "", str("ExternalPhotosUrl", "/EWS/Exchange.asmx/s"))},
			wantMsg: []string{"not an absolute URL"},
		},
		{
			name: "hostile ECP URL",
			rep: reply{body: userAnswer("NoError", "", "", "", str("ExternalPhotosUrl", photos)+
				str("ExternalEcpPhotoUrl", "https:///ecp"))},
			wantMsg: []string{`ExternalEcpPhotoUrl "https:///ecp": no host`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(seen) reply { return tt.rep })
			c := newClient(t, f, nil, func(o *Options) { o.AllowHTTP = tt.allowHTTP })
			s, err := c.Lookup(context.Background(), "alice@contoso.com")
			if len(tt.wantMsg) == 0 && tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Lookup: %v", err)
				}
			} else if err == nil {
				t.Fatalf("Lookup succeeded with %+v, want an error", s)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v is not %v", err, tt.wantErr)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q lacks %q", err, m)
				}
			}
			if strings.Contains(fmt.Sprint(err), "tok-") {
				t.Errorf("error leaks the token: %v", err)
			}
			if tt.check != nil {
				tt.check(t, s)
			}
		})
	}
}

func TestLookupErrorTypes(t *testing.T) {
	tests := []struct {
		name string
		rep  reply
		want string // type and fields
	}{
		{"autodiscover code", reply{body: userAnswer("InvalidDomain", "Bad domain.", "", "", "")}, "*Error InvalidDomain Bad domain."},
		{"http status", reply{status: 502}, "*StatusError 502 502 Bad Gateway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(seen) reply { return tt.rep })
			c := newClient(t, f, nil, nil)
			_, err := c.Lookup(context.Background(), "alice@contoso.com")
			var ae *Error
			var se *StatusError
			got := fmt.Sprint(err)
			switch {
			case errors.As(err, &ae):
				got = fmt.Sprintf("*Error %s %s", ae.Code, ae.Message)
				if ae.URL != f.url("/autodiscover/autodiscover.svc") {
					t.Errorf("URL = %q", ae.URL)
				}
			case errors.As(err, &se):
				got = fmt.Sprintf("*StatusError %d %s", se.StatusCode, se.Status)
			}
			if got != tt.want {
				t.Errorf("error = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestLookupRedirects(t *testing.T) {
	const svc = "/autodiscover/autodiscover.svc"
	tests := []struct {
		name         string
		maxRedirects int
		answer       func(f *fake, r seen) reply
		wantErr      error
		wantMsg      string   // error substring; "" means success
		wantReqs     []string // "path mailbox" per request
		wantHops     int      // len(Settings.Redirects) on success
		wantTo       string   // wsa:To of the last request, path only
	}{
		{
			name: "RedirectAddress followed",
			answer: func(f *fake, r seen) reply {
				if r.Mailboxes[0] == "alice@contoso.com" {
					return reply{body: userAnswer("RedirectAddress", "Redirection address.", "Alice.Smith@Fabrikam.com", "", "")}
				}
				return reply{body: allSettings("alice.smith@fabrikam.com")}
			},
			wantReqs: []string{svc + " alice@contoso.com", svc + " alice.smith@fabrikam.com"},
			wantHops: 1,
		},
		{
			name: "RedirectAddress loop",
			answer: func(f *fake, r seen) reply {
				next := map[string]string{"alice@contoso.com": "bob@contoso.com", "bob@contoso.com": "alice@contoso.com"}
				return reply{body: userAnswer("RedirectAddress", "", next[r.Mailboxes[0]], "", "")}
			},
			wantMsg:  `redirect loop: "alice@contoso.com" was already asked for`,
			wantReqs: []string{svc + " alice@contoso.com", svc + " bob@contoso.com"},
		},
		{
			name: "RedirectAddress to the same address",
			answer: func(f *fake, r seen) reply {
				return reply{body: userAnswer("RedirectAddress", "", "ALICE@contoso.com", "", "")}
			},
			wantMsg:  "to the same address",
			wantReqs: []string{svc + " alice@contoso.com"},
		},
		{
			name: "RedirectUrl followed",
			answer: func(f *fake, r seen) reply {
				if r.Path == svc {
					return reply{body: userAnswer("RedirectUrl", "", f.url("/other/autodiscover.svc"), "", "")}
				}
				return reply{body: allSettings("alice@contoso.com")}
			},
			wantReqs: []string{svc + " alice@contoso.com", "/other/autodiscover.svc alice@contoso.com"},
			wantHops: 1,
			wantTo:   "/other/autodiscover.svc",
		},
		{
			name: "RedirectUrl to http refused",
			answer: func(f *fake, r seen) reply {
				return reply{body: userAnswer("RedirectUrl", "", "http://"+f.host()+"/other/autodiscover.svc", "", "")}
			},
			wantErr:  ErrRefusedURL,
			wantMsg:  `RedirectTarget "http://`,
			wantReqs: []string{svc + " alice@contoso.com"},
		},
		{
			name: "RedirectUrl without target",
			answer: func(f *fake, r seen) reply {
				return reply{body: userAnswer("RedirectUrl", "", "", "", "")}
			},
			wantMsg:  "RedirectUrl from https://",
			wantReqs: []string{svc + " alice@contoso.com"},
		},
		{
			name: "RedirectUrl back to a visited URL",
			answer: func(f *fake, r seen) reply {
				if r.Path == svc {
					return reply{body: userAnswer("RedirectUrl", "", f.url("/other/autodiscover.svc"), "", "")}
				}
				return reply{body: userAnswer("RedirectUrl", "", f.url(svc), "", "")}
			},
			wantMsg:  "redirect loop",
			wantReqs: []string{svc + " alice@contoso.com", "/other/autodiscover.svc alice@contoso.com"},
		},
		{
			name: "HTTP 302 re-POSTed",
			answer: func(f *fake, r seen) reply {
				if r.Path == svc {
					return reply{status: http.StatusFound, header: http.Header{"Location": {"/moved/autodiscover.svc"}}}
				}
				if r.Method != http.MethodPost {
					return reply{status: http.StatusMethodNotAllowed}
				}
				return reply{body: allSettings("alice@contoso.com")}
			},
			wantReqs: []string{svc + " alice@contoso.com", "/moved/autodiscover.svc alice@contoso.com"},
			wantHops: 1,
			wantTo:   "/moved/autodiscover.svc",
		},
		{
			name: "HTTP 307 to userinfo refused",
			answer: func(f *fake, r seen) reply {
				return reply{status: http.StatusTemporaryRedirect, header: http.Header{"Location": {"https://u:p@" + f.host() + "/x"}}}
			},
			wantErr:  ErrRefusedURL,
			wantMsg:  "Location \"https://u:p@",
			wantReqs: []string{svc + " alice@contoso.com"},
		},
		{
			name:         "redirect limit",
			maxRedirects: 3,
			answer: func(f *fake, r seen) reply {
				return reply{status: http.StatusMovedPermanently, header: http.Header{"Location": {r.Path + "x"}}}
			},
			wantErr: ErrTooManyRedirects,
			wantMsg: "more than 3 hops",
			wantReqs: []string{svc + " alice@contoso.com", svc + "x alice@contoso.com",
				svc + "xx alice@contoso.com", svc + "xxx alice@contoso.com"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f *fake
			f = newFake(t, func(r seen) reply { return tt.answer(f, r) })
			tk := &tokens{}
			c := newClient(t, f, tk, func(o *Options) { o.MaxRedirects = tt.maxRedirects })
			s, err := c.Lookup(context.Background(), "alice@contoso.com")
			switch {
			case tt.wantMsg == "" && tt.wantErr == nil && err != nil:
				t.Fatalf("Lookup: %v", err)
			case tt.wantMsg == "" && tt.wantErr == nil:
				if s.ExternalPhotosURL != photos || len(s.Redirects) != tt.wantHops {
					t.Errorf("settings = %+v", s)
				}
			case err == nil:
				t.Fatalf("Lookup succeeded, want error %q", tt.wantMsg)
			case !strings.Contains(err.Error(), tt.wantMsg):
				t.Errorf("error %q lacks %q", err, tt.wantMsg)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v is not %v", err, tt.wantErr)
			}
			var got []string
			reqs := f.requests()
			for i, r := range reqs {
				got = append(got, r.Path+" "+strings.Join(r.Mailboxes, ","))
				if want := "Bearer tok-" + strings.Join(r.Mailboxes, ""); r.Auth != want {
					t.Errorf("request %d Authorization = %q, want %q", i, r.Auth, want)
				}
				if r.To != f.url(r.Path) {
					t.Errorf("request %d wsa:To = %q, posted to %s", i, r.To, r.Path)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.wantReqs, "\n") {
				t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.wantReqs, "\n"))
			}
			if len(tk.calls) != len(reqs) {
				t.Errorf("%d tokens for %d requests", len(tk.calls), len(reqs))
			}
		})
	}
}

func TestRedirectUrlToHTTPWithAllowHTTP(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, allSettings("alice@contoso.com"))
	}))
	t.Cleanup(plain.Close)
	f := newFake(t, func(seen) reply {
		return reply{body: userAnswer("RedirectUrl", "", plain.URL+"/autodiscover/autodiscover.svc", "", "")}
	})
	c := newClient(t, f, nil, func(o *Options) {
		o.AllowHTTP = true
		o.AllowedHosts = append(o.AllowedHosts, strings.TrimPrefix(plain.URL, "http://"))
	})
	s, err := c.Lookup(context.Background(), "alice@contoso.com")
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if want := []string{"RedirectUrl " + plain.URL + "/autodiscover/autodiscover.svc"}; fmt.Sprint(s.Redirects) != fmt.Sprint(want) {
		t.Errorf("Redirects = %q, want %q", s.Redirects, want)
	}
}

func TestLookupCache(t *testing.T) {
	tests := []struct {
		name     string
		rep      reply
		errorTTL time.Duration
		forget   bool
		wantReqs int
		wantHits int64 // of the two lookups; the others are misses
	}{
		{name: "hit", rep: reply{body: allSettings("a@contoso.com")}, wantReqs: 1, wantHits: 1},
		{name: "forget", rep: reply{body: allSettings("a@contoso.com")}, forget: true, wantReqs: 2},
		{name: "error cached", rep: reply{status: 500}, wantReqs: 1, wantHits: 1},
		{name: "error not cached", rep: reply{status: 500}, errorTTL: -1, wantReqs: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(seen) reply { return tt.rep })
			c := newClient(t, f, nil, func(o *Options) { o.ErrorTTL = tt.errorTTL })
			s1, err1 := c.Lookup(context.Background(), "Alice@contoso.com")
			if tt.forget {
				c.Forget("ALICE@contoso.com")
			}
			s2, err2 := c.Lookup(context.Background(), "alice@contoso.com")
			if fmt.Sprint(s1, err1) != fmt.Sprint(s2, err2) {
				t.Errorf("second answer %v %v differs from first %v %v", s2, err2, s1, err1)
			}
			if n := len(f.requests()); n != tt.wantReqs {
				t.Errorf("%d requests, want %d", n, tt.wantReqs)
			}
			if hits, misses := c.CacheCounts(); hits != tt.wantHits || misses != 2-tt.wantHits {
				t.Errorf("cache counts: %d hits, %d misses; want %d, %d", hits, misses, tt.wantHits, 2-tt.wantHits)
			}
		})
	}
}

func TestCachedSettingsAreCopies(t *testing.T) {
	f := newFake(t, func(r seen) reply {
		if r.Path == "/autodiscover/autodiscover.svc" {
			return reply{status: http.StatusFound, header: http.Header{"Location": {"/b"}}}
		}
		return reply{body: allSettings("a@contoso.com")}
	})
	c := newClient(t, f, nil, nil)
	s1, err := c.Lookup(context.Background(), "alice@contoso.com")
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	s1.Redirects[0] = "changed"
	s2, _ := c.Lookup(context.Background(), "alice@contoso.com")
	if s2.Redirects[0] != "HTTP "+f.url("/b") {
		t.Errorf("cached Redirects changed by a caller: %q", s2.Redirects)
	}
}

func TestConcurrentLookupsShareOneRequest(t *testing.T) {
	const n = 8
	var missed sync.WaitGroup
	missed.Add(n)
	f := newFake(t, func(seen) reply {
		missed.Wait() // answer only once every caller has missed the cache
		return reply{body: allSettings("alice@contoso.com")}
	})
	c := newClient(t, f, nil, nil)
	c.missHook = missed.Done

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			s, err := c.Lookup(context.Background(), "alice@contoso.com")
			if err == nil && s.ExternalPhotosURL != photos {
				err = fmt.Errorf("settings %+v", s)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := len(f.requests()); got != 1 {
		t.Errorf("%d requests for %d concurrent Lookups, want 1", got, n)
	}
}

func TestCallerLeavesFlightGoesOn(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{})
	f := newFake(t, func(seen) reply {
		close(arrived) // a second request would panic here
		<-release
		return reply{body: allSettings("alice@contoso.com")}
	})
	c := newClient(t, f, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Lookup(ctx, "alice@contoso.com")
		done <- err
	}()
	<-arrived
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Lookup after cancel = %v, want context.Canceled", err)
	}
	close(release)
	// The flight was not cancelled: this Lookup joins it or hits the cache.
	s, err := c.Lookup(context.Background(), "alice@contoso.com")
	if err != nil || s.ExternalPhotosURL != photos {
		t.Fatalf("second Lookup = %+v, %v", s, err)
	}
	if got := len(f.requests()); got != 1 {
		t.Errorf("%d requests, want 1", got)
	}
}

func TestEmailIsEscaped(t *testing.T) {
	const email = `o'brien&<x>"@contoso.com`
	f := newFake(t, func(seen) reply { return reply{body: allSettings(email)} })
	tk := &tokens{}
	c := newClient(t, f, tk, nil)
	s, err := c.Lookup(context.Background(), email)
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if s.SMTPAddress != email {
		t.Errorf("SMTPAddress = %q", s.SMTPAddress)
	}
	r := f.requests()[0]
	if len(r.Mailboxes) != 1 || r.Mailboxes[0] != email {
		t.Errorf("Mailbox = %q, want %q", r.Mailboxes, email)
	}
	if !strings.Contains(r.Raw, "o&#39;brien&amp;&lt;x&gt;&#34;@contoso.com") {
		t.Errorf("body does not escape the email:\n%s", r.Raw)
	}
}

func TestLookupBadEmail(t *testing.T) {
	f := newFake(t, func(seen) reply { return reply{body: allSettings("x")} })
	c := newClient(t, f, nil, nil)
	for _, email := range []string{"", "alice", "@contoso.com", "alice@", "al ice@contoso.com", "a\r\nb@contoso.com", strings.Repeat("a", 320) + "@c"} {
		if _, err := c.Lookup(context.Background(), email); err == nil {
			t.Errorf("Lookup(%q) succeeded", email)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests for bad emails", n)
	}
}

func TestTokenError(t *testing.T) {
	f := newFake(t, func(seen) reply { return reply{body: allSettings("x")} })
	boom := errors.New("no certificate")
	c := newClient(t, f, TokenFunc(func(context.Context, string, string) (string, error) { return "", boom }), nil)
	_, err := c.Lookup(context.Background(), "alice@contoso.com")
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "autodiscover: token for") {
		t.Errorf("error = %v", err)
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests without a token", n)
	}
}

func TestNew(t *testing.T) {
	tk := TokenFunc(func(context.Context, string, string) (string, error) { return "", nil })
	tests := []struct {
		name    string
		opts    Options
		wantMsg string // "" means valid
		first   string
	}{
		{name: "minimal", opts: Options{Domain: "contoso.com", Tokens: tk}, first: "https://contoso.com/autodiscover/autodiscover.svc"},
		{name: "port", opts: Options{Domain: "mail.contoso.com:8443", Tokens: tk}, first: "https://mail.contoso.com:8443/autodiscover/autodiscover.svc"},
		{name: "http", opts: Options{Domain: "127.0.0.1:8080", Tokens: tk, AllowHTTP: true, Scheme: "http"}, first: "http://127.0.0.1:8080/autodiscover/autodiscover.svc"},
		{name: "http without AllowHTTP", opts: Options{Domain: "contoso.com", Tokens: tk, Scheme: "http"}, wantMsg: "scheme http needs AllowHTTP"},
		{name: "odd scheme", opts: Options{Domain: "contoso.com", Tokens: tk, Scheme: "ftp"}, wantMsg: `scheme "ftp"`},
		{name: "no domain", opts: Options{Tokens: tk}, wantMsg: "no domain"},
		{name: "domain with scheme", opts: Options{Domain: "https://contoso.com", Tokens: tk}, wantMsg: `domain "https://contoso.com"`},
		{name: "domain with path", opts: Options{Domain: "contoso.com/x", Tokens: tk}, wantMsg: "want host[:port]"},
		{name: "domain with userinfo", opts: Options{Domain: "u@contoso.com", Tokens: tk}, wantMsg: "want host[:port]"},
		{name: "no tokens", opts: Options{Domain: "contoso.com"}, wantMsg: "no token source"},
		{name: "all at once", opts: Options{MaxRedirects: -1}, wantMsg: "no domain\nautodiscover: no token source\nautodiscover: negative MaxRedirects"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.opts)
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if c.first.String() != tt.first {
					t.Errorf("first URL = %s, want %s", c.first, tt.first)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("New error = %v, want %q", err, tt.wantMsg)
			}
		})
	}
}

func TestNewDoesNotChangeCallerClient(t *testing.T) {
	hc := &http.Client{}
	if _, err := New(Options{Domain: "contoso.com", Tokens: &tokens{}, HTTPClient: hc}); err != nil {
		t.Fatal(err)
	}
	if hc.CheckRedirect != nil {
		t.Error("New set CheckRedirect on the caller's client")
	}
}

func TestCacheIsBounded(t *testing.T) {
	f := newFake(t, func(r seen) reply { return reply{body: allSettings(r.Mailboxes[0])} })
	c := newClient(t, f, nil, func(o *Options) { o.MaxEntries = 5 })
	for i := 0; i < 23; i++ {
		if _, err := c.Lookup(context.Background(), fmt.Sprintf("p%d@contoso.com", i)); err != nil {
			t.Fatal(err)
		}
		if n := c.cache.ItemCount(); n > 5 {
			t.Fatalf("after %d lookups the cache holds %d answers, bound 5", i+1, n)
		}
	}
	// The latest answer is kept.
	if _, err := c.Lookup(context.Background(), "p22@contoso.com"); err != nil || len(f.requests()) != 23 {
		t.Fatalf("Lookup = %v after %d requests, want the cached answer after 23", err, len(f.requests()))
	}
}

func TestPeekShowsTheCacheWithoutCounting(t *testing.T) {
	f := newFake(t, func(seen) reply { return reply{body: allSettings("a@contoso.com")} })
	c := newClient(t, f, nil, nil)
	if _, ok := c.Peek("alice@contoso.com"); ok {
		t.Fatal("Peek found an entry before any lookup")
	}
	s, err := c.Lookup(context.Background(), "alice@contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	got, ok := c.Peek("ALICE@contoso.com")
	if !ok || got.Err != nil || got.Settings.ExternalPhotosURL != s.ExternalPhotosURL || !got.Expires.After(time.Now()) {
		t.Fatalf("Peek = %+v, %v; want the cached answer with an expiry", got, ok)
	}
	if hits, misses := c.CacheCounts(); hits != 0 || misses != 1 || len(f.requests()) != 1 {
		t.Errorf("after Peek: %d hits, %d misses, %d requests; want 0, 1, 1", hits, misses, len(f.requests()))
	}
}
