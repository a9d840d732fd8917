package exchangetest

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strings"
	"testing"
)

// Response shapes parsed by namespace URI, as a client must.
type adResponseEnvelope struct {
	Header struct {
		Action struct {
			MustUnderstand string `xml:"http://schemas.xmlsoap.org/soap/envelope/ mustUnderstand,attr"`
			Value          string `xml:",chardata"`
		} `xml:"http://www.w3.org/2005/08/addressing Action"`
		ServerVersionInfo struct {
			MajorVersion int    `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover MajorVersion"`
			Version      string `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover Version"`
		} `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover ServerVersionInfo"`
	} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Header"`
	Body struct {
		Message struct {
			Response struct {
				ErrorCode     string `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover ErrorCode"`
				UserResponses []struct {
					ErrorCode      string `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover ErrorCode"`
					ErrorMessage   string `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover ErrorMessage"`
					RedirectTarget struct {
						Nil   string `xml:"http://www.w3.org/2001/XMLSchema-instance nil,attr"`
						Value string `xml:",chardata"`
					} `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover RedirectTarget"`
					SettingErrors []struct {
						ErrorCode   string `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover ErrorCode"`
						SettingName string `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover SettingName"`
					} `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover UserSettingErrors>UserSettingError"`
					Settings []struct {
						Type  string `xml:"http://www.w3.org/2001/XMLSchema-instance type,attr"`
						Name  string `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover Name"`
						Value string `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover Value"`
					} `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover UserSettings>UserSetting"`
				} `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover UserResponses>UserResponse"`
			} `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover Response"`
		} `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover GetUserSettingsResponseMessage"`
		Fault *struct {
			Code string `xml:"faultcode"`
		} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault"`
	} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
}

// adRequest builds a GetUserSettings request with unusual prefixes, so the
// server has to match namespaces by URI.
func adRequest(action, to string, mailboxes, settings []string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` +
		`<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:x="http://schemas.microsoft.com/exchange/2010/Autodiscover" xmlns:w="http://www.w3.org/2005/08/addressing">` +
		`<soap:Header><x:RequestedServerVersion>Exchange2013</x:RequestedServerVersion>` +
		`<w:Action>` + action + `</w:Action><w:To>` + to + `</w:To></soap:Header>` +
		`<soap:Body><GetUserSettingsRequestMessage xmlns="http://schemas.microsoft.com/exchange/2010/Autodiscover"><Request><Users>`)
	for _, m := range mailboxes {
		b.WriteString(`<User><Mailbox>` + m + `</Mailbox></User>`)
	}
	b.WriteString(`</Users><RequestedSettings>`)
	for _, s := range settings {
		b.WriteString(`<Setting>` + s + `</Setting>`)
	}
	b.WriteString(`</RequestedSettings></Request></GetUserSettingsRequestMessage></soap:Body></soap:Envelope>`)
	return b.String()
}

func TestAutodiscover(t *testing.T) {
	f := newFixture(t)
	host := f.s.Host()
	tok := f.token(t, "alice@contoso.com")
	to := f.s.URL() + autodiscoverPath
	f.s.SetAutodiscover("carol@contoso.com", AutodiscoverBehavior{OmitSettings: []string{"ExternalPhotosUrl"}})
	f.s.SetAutodiscover("bob@contoso.com", AutodiscoverBehavior{ErrorCode: "RedirectAddress", RedirectTarget: "bob@fabrikam.com"})
	settings := []string{"ExternalPhotosUrl", "ExternalEcpPhotoUrl", "ExternalEwsUrl", "AutoDiscoverSMTPAddress", "NoSuchSetting"}

	resp, body := f.do(t, http.MethodPost, autodiscoverPath, tok, map[string]string{"Content-Type": "text/xml; charset=utf-8"},
		adRequest(actionGetUserSettings, to, []string{"Alice@contoso.com", "nobody@contoso.com", "carol@contoso.com", "bob@contoso.com"}, settings))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var env adResponseEnvelope
	if err := xml.Unmarshal(body, &env); err != nil {
		t.Fatalf("parsing response: %v\n%s", err, body)
	}
	if a := env.Header.Action; a.Value != actionGetUserSettings+"Response" || a.MustUnderstand != "1" {
		t.Errorf("response action %+v", a)
	}
	if v := env.Header.ServerVersionInfo; v.MajorVersion != 15 || v.Version != "Exchange2013" {
		t.Errorf("ServerVersionInfo %+v", v)
	}
	r := env.Body.Message.Response
	if r.ErrorCode != "NoError" || len(r.UserResponses) != 4 {
		t.Fatalf("response ErrorCode %q with %d user responses, want NoError and 4", r.ErrorCode, len(r.UserResponses))
	}

	alice := r.UserResponses[0]
	if alice.ErrorCode != "NoError" || alice.RedirectTarget.Nil != "true" {
		t.Errorf("alice: ErrorCode %q, RedirectTarget %+v", alice.ErrorCode, alice.RedirectTarget)
	}
	want := map[string]string{
		"ExternalPhotosUrl":       "https://" + host + "/EWS/Exchange.asmx/s",
		"ExternalEcpPhotoUrl":     "https://" + host + "/ecp/PersonalSettings/EditAccount.aspx?chgPhoto=1&exsvurl=1&realm=contoso.com",
		"ExternalEwsUrl":          "https://" + host + "/EWS/Exchange.asmx",
		"AutoDiscoverSMTPAddress": "alice@contoso.com",
	}
	got := map[string]string{}
	nonString := 0
	for _, s := range alice.Settings {
		if s.Type != "StringSetting" {
			nonString++
			continue
		}
		got[s.Name] = s.Value
	}
	if nonString != 1 {
		t.Errorf("%d non-string settings, want 1", nonString)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("alice %s = %q, want %q", k, got[k], v)
		}
	}
	if len(alice.SettingErrors) != 1 || alice.SettingErrors[0].ErrorCode != "InvalidSetting" || alice.SettingErrors[0].SettingName != "NoSuchSetting" {
		t.Errorf("alice setting errors %+v, want InvalidSetting for NoSuchSetting", alice.SettingErrors)
	}

	if u := r.UserResponses[1]; u.ErrorCode != "InvalidUser" || u.ErrorMessage != "Invalid user 'nobody@contoso.com'" {
		t.Errorf("unknown user: %q %q", u.ErrorCode, u.ErrorMessage)
	}

	carol := r.UserResponses[2]
	var omitted bool
	for _, e := range carol.SettingErrors {
		omitted = omitted || (e.SettingName == "ExternalPhotosUrl" && e.ErrorCode == "SettingIsNotAvailable")
	}
	for _, s := range carol.Settings {
		if s.Name == "ExternalPhotosUrl" {
			t.Error("carol: omitted setting still answered")
		}
	}
	if carol.ErrorCode != "NoError" || !omitted {
		t.Errorf("carol: ErrorCode %q, errors %+v; want ExternalPhotosUrl SettingIsNotAvailable", carol.ErrorCode, carol.SettingErrors)
	}

	if u := r.UserResponses[3]; u.ErrorCode != "RedirectAddress" || u.RedirectTarget.Value != "bob@fabrikam.com" || len(u.Settings) != 0 {
		t.Errorf("bob: %+v, want RedirectAddress to bob@fabrikam.com", u)
	}

	reqs := f.s.Requests()
	if len(reqs) != 1 || reqs[0].Kind != KindAutodiscover || reqs[0].Actor != "alice@contoso.com" ||
		reqs[0].Email != "Alice@contoso.com,nobody@contoso.com,carol@contoso.com,bob@contoso.com" {
		t.Errorf("request log %+v", reqs)
	}
}

func TestAutodiscoverRejects(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, "alice@contoso.com")
	to := f.s.URL() + autodiscoverPath
	good := adRequest(actionGetUserSettings, to, []string{"alice@contoso.com"}, []string{"ExternalPhotosUrl"})
	tests := []struct {
		name, method, token, body string
		wantStatus                int
		wantFault, wantCode       string
	}{
		{name: "no token", method: "POST", body: good, wantStatus: 401},
		{name: "GET", method: "GET", token: tok, wantStatus: 405},
		{name: "wrong action", method: "POST", token: tok, wantStatus: 500, wantFault: "a:ActionNotSupported",
			body: adRequest(nsAutodiscover+"/Autodiscover/GetDomainSettings", to, []string{"alice@contoso.com"}, []string{"ExternalPhotosUrl"})},
		{name: "https namespace", method: "POST", token: tok, wantStatus: 500, wantFault: "s:Client",
			body: strings.ReplaceAll(good, "http://schemas.xmlsoap.org/soap/envelope/", "https://schemas.xmlsoap.org/soap/envelope/")},
		{name: "doctype", method: "POST", token: tok, wantStatus: 500, wantFault: "s:Client",
			body: strings.Replace(good, "?>", `?><!DOCTYPE x [<!ENTITY a "b">]>`, 1)},
		{name: "too large", method: "POST", token: tok, wantStatus: 413,
			body: strings.Replace(good, "<soap:Body>", "<soap:Body><!--"+strings.Repeat("x", maxAutodiscoverBody)+"-->", 1)},
		{name: "no users", method: "POST", token: tok, wantStatus: 200, wantCode: "InvalidRequest",
			body: adRequest(actionGetUserSettings, to, nil, []string{"ExternalPhotosUrl"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.do(t, tt.method, autodiscoverPath, tt.token, nil, tt.body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantFault == "" && tt.wantCode == "" {
				return
			}
			var env adResponseEnvelope
			if err := xml.Unmarshal(body, &env); err != nil {
				t.Fatalf("parsing: %v", err)
			}
			if tt.wantFault != "" && (env.Body.Fault == nil || env.Body.Fault.Code != tt.wantFault) {
				t.Errorf("fault %+v, want %s", env.Body.Fault, tt.wantFault)
			}
			if tt.wantCode != "" && env.Body.Message.Response.ErrorCode != tt.wantCode {
				t.Errorf("ErrorCode %q, want %q", env.Body.Message.Response.ErrorCode, tt.wantCode)
			}
		})
	}
}

func TestOtherEndpoints(t *testing.T) {
	f := newFixture(t)
	resp, body := f.do(t, http.MethodGet, metadataPath, "", nil, "")
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/json; charset=utf-8" {
		t.Fatalf("metadata: status %d, Content-Type %q", resp.StatusCode, ct)
	}
	var doc struct {
		Realm, Issuer string
		Keys          []struct {
			Usage    string
			KeyInfo  struct{ X5t string }         `json:"keyinfo"`
			KeyValue struct{ Type, Value string } `json:"keyvalue"`
		}
		Endpoints []struct{ Location string }
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	// Exchange's own metadata parses with the same lenient reader.
	md, err := parsePartnerMetadata(body)
	if err != nil {
		t.Fatalf("parsing own metadata: %v", err)
	}
	if doc.Realm != "*" || doc.Issuer != ExchangeClientID+"@*" || len(doc.Keys) != 1 || len(md.certs) != 1 ||
		len(doc.Endpoints) != 1 || doc.Endpoints[0].Location != f.s.URL()+metadataPath {
		t.Errorf("metadata %+v", doc)
	}
	tp, err := decodeThumbprint(doc.Keys[0].KeyInfo.X5t)
	if err != nil || md.certs[hex.EncodeToString(tp)] == nil {
		t.Errorf("keyinfo.x5t %q does not name the published certificate", doc.Keys[0].KeyInfo.X5t)
	}

	resp, body = f.do(t, http.MethodGet, "/ecp/PersonalSettings/EditAccount.aspx?chgPhoto=1&exsvurl=1&realm=contoso.com", "", nil, "")
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Change your photo") {
		t.Errorf("ecp: status %d", resp.StatusCode)
	}
	resp, _ = f.do(t, http.MethodGet, probePath, "", nil, "")
	if resp.StatusCode != 401 || resp.Header.Get("X-OAuth-Enabled") != "True" || resp.Header.Get("X-SOAP-Enabled") != "True" {
		t.Errorf("probe: status %d, headers %v", resp.StatusCode, resp.Header)
	}
	resp, _ = f.do(t, http.MethodGet, "/owa/", "", nil, "")
	if resp.StatusCode != 404 {
		t.Errorf("unknown path: status %d", resp.StatusCode)
	}
	var kinds []string
	for _, r := range f.s.Requests() {
		kinds = append(kinds, r.Kind)
	}
	if got, want := strings.Join(kinds, ","), "metadata,ecp,probe,other"; got != want {
		t.Errorf("logged kinds %s, want %s", got, want)
	}
	if resp, err := http.Get(strings.Replace(f.s.URL(), "https://", "http://", 1) + metadataPath); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP served the metadata")
		}
	}
}

func TestDialContextKnowsOnlyItsHostnames(t *testing.T) {
	s := NewServer(Options{Hostnames: []string{"mail.contoso.com"}})
	defer s.Close()
	for host, ok := range map[string]bool{"mail.contoso.com:443": true, "MAIL.contoso.com:1": true, "localhost:9": true, "evil.example:443": false} {
		c, err := s.DialContext(context.Background(), "tcp", host)
		if c != nil {
			c.Close()
		}
		if (err == nil) != ok {
			t.Errorf("DialContext(%s) = %v, want ok %v", host, err, ok)
		}
	}
}
