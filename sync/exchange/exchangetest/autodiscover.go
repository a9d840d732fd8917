package exchangetest

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
)

// XML namespaces of SOAP Autodiscover, matched by URI
// (https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/soap-autodiscover-web-service-reference-for-exchange).
const (
	nsSOAP         = "http://schemas.xmlsoap.org/soap/envelope/"
	nsAddressing   = "http://www.w3.org/2005/08/addressing"
	nsAutodiscover = "http://schemas.microsoft.com/exchange/2010/Autodiscover"
	nsXSI          = "http://www.w3.org/2001/XMLSchema-instance"

	actionGetUserSettings = nsAutodiscover + "/Autodiscover/GetUserSettings"
	maxAutodiscoverBody   = 64 << 10
)

type adEnvelope struct {
	XMLName xml.Name `xml:"http://schemas.xmlsoap.org/soap/envelope/ Envelope"`
	Header  struct {
		Action string `xml:"http://www.w3.org/2005/08/addressing Action"`
	} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Header"`
	Body struct {
		Message *struct {
			Request struct {
				Users struct {
					User []struct {
						Mailbox string `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover Mailbox"`
					} `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover User"`
				} `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover Users"`
				RequestedSettings struct {
					Setting []string `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover Setting"`
				} `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover RequestedSettings"`
			} `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover Request"`
		} `xml:"http://schemas.microsoft.com/exchange/2010/Autodiscover GetUserSettingsRequestMessage"`
	} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
}

// checkNoDoctype rejects any DTD: Exchange refuses them, and so must a
// simulator that parses untrusted XML.
func checkNoDoctype(body []byte) error {
	d := xml.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if dir, ok := tok.(xml.Directive); ok && bytes.HasPrefix(bytes.TrimSpace(bytes.ToUpper(dir)), []byte("DOCTYPE")) {
			return errors.New("doctype not allowed")
		}
	}
}

func (s *Server) serveAutodiscover(w http.ResponseWriter, r *http.Request, entry *Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if _, ok := s.authenticate(w, r, entry); !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAutodiscoverBody))
	if err != nil {
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	if err := checkNoDoctype(body); err != nil {
		writeFault(w, "s:Client", "The request could not be read: "+err.Error())
		return
	}
	var env adEnvelope
	if err := xml.Unmarshal(body, &env); err != nil {
		writeFault(w, "s:Client", "The request is not a SOAP 1.1 envelope: "+err.Error())
		return
	}
	if a := strings.TrimSpace(env.Header.Action); a != actionGetUserSettings {
		writeFault(w, "a:ActionNotSupported", fmt.Sprintf("The message with Action '%s' cannot be processed at the receiver, due to a ContractFilter mismatch at the EndpointDispatcher.", a))
		return
	}

	var out bytes.Buffer
	out.WriteString(`<?xml version="1.0" encoding="utf-8"?>`)
	out.WriteString(`<s:Envelope xmlns:s="` + nsSOAP + `" xmlns:a="` + nsAddressing + `"><s:Header>`)
	out.WriteString(`<a:Action s:mustUnderstand="1">` + actionGetUserSettings + `Response</a:Action>`)
	out.WriteString(`<h:ServerVersionInfo xmlns:h="` + nsAutodiscover + `" xmlns:i="` + nsXSI + `">` +
		`<h:MajorVersion>15</h:MajorVersion><h:MinorVersion>0</h:MinorVersion>` +
		`<h:MajorBuildNumber>1497</h:MajorBuildNumber><h:MinorBuildNumber>2</h:MinorBuildNumber>` +
		`<h:Version>Exchange2013</h:Version></h:ServerVersionInfo>`)
	out.WriteString(`</s:Header><s:Body><GetUserSettingsResponseMessage xmlns="` + nsAutodiscover + `">`)
	out.WriteString(`<Response xmlns:i="` + nsXSI + `">`)

	msg := env.Body.Message
	switch {
	case msg == nil:
		writeResponseError(&out, "InvalidRequest", "The request has no GetUserSettingsRequestMessage.")
	case len(msg.Request.Users.User) == 0:
		writeResponseError(&out, "InvalidRequest", "The request has no users.")
	case len(msg.Request.RequestedSettings.Setting) == 0:
		writeResponseError(&out, "InvalidRequest", "The request has no requested settings.")
	default:
		var mailboxes []string
		out.WriteString(`<ErrorCode>NoError</ErrorCode><ErrorMessage/><UserResponses>`)
		for _, u := range msg.Request.Users.User {
			mb := strings.TrimSpace(u.Mailbox)
			mailboxes = append(mailboxes, mb)
			s.writeUserResponse(&out, r.Host, mb, msg.Request.RequestedSettings.Setting)
		}
		out.WriteString(`</UserResponses>`)
		entry.Email = strings.Join(mailboxes, ",")
	}
	out.WriteString(`</Response></GetUserSettingsResponseMessage></s:Body></s:Envelope>`)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = w.Write(out.Bytes())
}

func writeResponseError(out *bytes.Buffer, code, msg string) {
	out.WriteString(`<ErrorCode>` + code + `</ErrorCode><ErrorMessage>`)
	_ = xml.EscapeText(out, []byte(msg))
	out.WriteString(`</ErrorMessage><UserResponses/>`)
}

// userErrorMessages are Exchange's wording for per-user error codes.
var userErrorMessages = map[string]string{
	"RedirectAddress": "Redirection address.",
	"RedirectUrl":     "Redirection URL.",
	"ServerBusy":      "The server is too busy to process the request.",
}

// settingValues are the StringSettings the simulator knows, for a mailbox
// on host.
func settingValues(host string, u userState) map[string]string {
	domain := u.Email[strings.LastIndexByte(u.Email, '@')+1:]
	ews := "https://" + host + "/EWS/Exchange.asmx"
	fragment := "PersonalSettings/EditAccount.aspx?chgPhoto=1&exsvurl=1&realm=" + domain
	ecp := "https://" + host + "/ecp/"
	return map[string]string{
		"AutoDiscoverSMTPAddress": u.Email,
		"UserDisplayName":         u.Name,
		"CasVersion":              "15.0.1497.2",
		"ExternalEwsUrl":          ews,
		"InternalEwsUrl":          ews,
		"ExternalPhotosUrl":       ews + "/s",
		"InternalPhotosUrl":       ews + "/s",
		"ExternalEcpUrl":          ecp,
		"InternalEcpUrl":          ecp,
		"EcpPhotoUrlFragment":     fragment,
		"ExternalEcpPhotoUrl":     ecp + fragment,
		"InternalEcpPhotoUrl":     ecp + fragment,
	}
}

// webClientUrls is the one non-string setting always returned, so clients
// have to skip settings of other xsi:types (a WebClientUrlCollectionSetting).
const webClientUrls = "ExternalWebClientUrls"

func (s *Server) writeUserResponse(out *bytes.Buffer, host, mailbox string, requested []string) {
	esc := func(v string) { _ = xml.EscapeText(out, []byte(v)) }
	out.WriteString(`<UserResponse>`)
	b := s.behavior(mailbox).on(host)
	u, known := s.user(mailbox)
	code, msg := b.ErrorCode, b.ErrorMessage
	if code == "" && !known {
		code = "InvalidUser"
	}
	if code != "" && code != "NoError" {
		if msg == "" {
			msg = userErrorMessages[code]
		}
		if code == "InvalidUser" && msg == "" {
			msg = "Invalid user '" + mailbox + "'"
		}
		out.WriteString(`<ErrorCode>`)
		esc(code)
		out.WriteString(`</ErrorCode><ErrorMessage>`)
		esc(msg)
		out.WriteString(`</ErrorMessage>`)
		if b.RedirectTarget != "" {
			out.WriteString(`<RedirectTarget>`)
			esc(b.RedirectTarget)
			out.WriteString(`</RedirectTarget>`)
		} else {
			out.WriteString(`<RedirectTarget i:nil="true"/>`)
		}
		out.WriteString(`<UserSettingErrors/><UserSettings/></UserResponse>`)
		return
	}

	values := settingValues(host, u)
	maps.Copy(values, b.Settings)
	omitted := make(map[string]bool, len(b.OmitSettings))
	for _, o := range b.OmitSettings {
		omitted[strings.ToLower(o)] = true
	}
	var errs, settings bytes.Buffer
	wroteWebClient := false
	writeWebClient := func() {
		if wroteWebClient {
			return
		}
		wroteWebClient = true
		settings.WriteString(`<UserSetting i:type="WebClientUrlCollectionSetting"><Name>` + webClientUrls + `</Name>` +
			`<WebClientUrls><WebClientUrl><AuthenticationMethods>Fba</AuthenticationMethods><Url>https://`)
		_ = xml.EscapeText(&settings, []byte(host))
		settings.WriteString(`/owa/</Url></WebClientUrl></WebClientUrls></UserSetting>`)
	}
	writeWebClient() // first, so clients must skip it to reach the strings
	for _, name := range requested {
		name = strings.TrimSpace(name)
		var code, msg string
		v, ok := values[name]
		switch {
		case omitted[strings.ToLower(name)]:
			code, msg = "SettingIsNotAvailable", "User setting '"+name+"' is not available. "
		case name == webClientUrls:
			continue
		case !ok:
			code, msg = "InvalidSetting", "The requested setting '"+name+"' is invalid."
		}
		if code != "" {
			errs.WriteString(`<UserSettingError><ErrorCode>` + code + `</ErrorCode><ErrorMessage>`)
			_ = xml.EscapeText(&errs, []byte(msg))
			errs.WriteString(`</ErrorMessage><SettingName>`)
			_ = xml.EscapeText(&errs, []byte(name))
			errs.WriteString(`</SettingName></UserSettingError>`)
			continue
		}
		settings.WriteString(`<UserSetting i:type="StringSetting"><Name>`)
		_ = xml.EscapeText(&settings, []byte(name))
		settings.WriteString(`</Name><Value>`)
		_ = xml.EscapeText(&settings, []byte(v))
		settings.WriteString(`</Value></UserSetting>`)
	}
	out.WriteString(`<ErrorCode>NoError</ErrorCode><ErrorMessage>No error.</ErrorMessage><RedirectTarget i:nil="true"/>`)
	out.WriteString(`<UserSettingErrors>`)
	out.Write(errs.Bytes())
	out.WriteString(`</UserSettingErrors><UserSettings>`)
	out.Write(settings.Bytes())
	out.WriteString(`</UserSettings></UserResponse>`)
}

// writeFault answers a SOAP 1.1 fault with status 500, as WCF does.
func writeFault(w http.ResponseWriter, code, reason string) {
	var out bytes.Buffer
	out.WriteString(`<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="` + nsSOAP + `"><s:Body><s:Fault>`)
	out.WriteString(`<faultcode xmlns:a="` + nsAddressing + `">` + code + `</faultcode><faultstring xml:lang="en-US">`)
	_ = xml.EscapeText(&out, []byte(reason))
	out.WriteString(`</faultstring></s:Fault></s:Body></s:Envelope>`)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write(out.Bytes())
}

// serveProbe answers the EWS Managed API's unauthenticated header probe
// (a GET of /autodiscover/autodiscover.xml over plain http that answers a
// redirect, https://learn.microsoft.com/en-us/exchange/client-developer/exchange-web-services/how-to-generate-a-list-of-autodiscover-endpoints);
// a POST to the same path is POX Autodiscover (servePOX).
func (s *Server) serveProbe(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-SOAP-Enabled", "True")
	h.Set("X-WSSecurity-Enabled", "True")
	h.Set("X-OAuth-Enabled", "True")
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.challenge(w, nil)
}

// serveMetadata publishes Exchange's auth metadata document at
// /autodiscover/metadata/json/1.
func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	tp := sha1.Sum(s.signCert.Raw)
	type kv struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	}
	type key struct {
		Usage    string            `json:"usage"`
		KeyInfo  map[string]string `json:"keyinfo"`
		KeyValue kv                `json:"keyvalue"`
	}
	type endpoint struct {
		Location string `json:"location"`
		Protocol string `json:"protocol"`
		Usage    string `json:"usage"`
	}
	doc := struct {
		ID               string     `json:"id"`
		Version          string     `json:"version"`
		Name             string     `json:"name"`
		Realm            string     `json:"realm"`
		ServiceName      string     `json:"serviceName"`
		Issuer           string     `json:"issuer"`
		AllowedAudiences []string   `json:"allowedAudiences"`
		Keys             []key      `json:"keys"`
		Endpoints        []endpoint `json:"endpoints"`
	}{
		ID: s.metaID, Version: "1.0", Name: "Exchange", Realm: "*",
		ServiceName:      ExchangeClientID,
		Issuer:           ExchangeClientID + "@*",
		AllowedAudiences: []string{ExchangeClientID + "@*"},
		Keys: []key{{
			Usage:    "signing",
			KeyInfo:  map[string]string{"x5t": base64.RawURLEncoding.EncodeToString(tp[:])},
			KeyValue: kv{Type: "x509Certificate", Value: base64.StdEncoding.EncodeToString(s.signCert.Raw)},
		}},
		Endpoints: []endpoint{{Location: "https://" + r.Host + metadataPath, Protocol: "OAuth2", Usage: "metadata"}},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(b)
}

// serveECP is the landing page of the "change your photo" link.
func (s *Server) serveECP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, `<!DOCTYPE html><html><head><title>Change your photo</title></head>`+
		`<body><h1>Change your photo</h1><p>This is the Exchange simulator's photo page.</p></body></html>`)
}

// POX namespaces (https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/pox-autodiscover-web-service-reference-for-exchange).
const (
	nsPOXRequest  = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
	nsPOXResponse = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
	nsPOXOutlook  = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
)

type poxRequest struct {
	XMLName xml.Name `xml:"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006 Autodiscover"`
	Request struct {
		EMailAddress             string `xml:"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006 EMailAddress"`
		AcceptableResponseSchema string `xml:"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006 AcceptableResponseSchema"`
	} `xml:"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006 Request"`
}

// servePOX answers POX Autodiscover: the EXPR protocol with EwsUrl, EcpUrl
// and EcpUrl-photo (there is no photos URL in POX), redirectAddr and
// redirectUrl on demand, an Error for an unknown mailbox or a bad request.
func (s *Server) servePOX(w http.ResponseWriter, r *http.Request, entry *Request) {
	if _, ok := s.authenticate(w, r, entry); !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAutodiscoverBody))
	if err != nil {
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	var req poxRequest
	out := &bytes.Buffer{}
	esc := func(v string) { _ = xml.EscapeText(out, []byte(v)) }
	out.WriteString(`<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="` + nsPOXResponse + `">`)
	poxError := func(code, msg string) {
		out.WriteString(`<Response><Error Time="00:00:00.0000000" Id="1"><ErrorCode>` + code + `</ErrorCode><Message>`)
		esc(msg)
		out.WriteString(`</Message><DebugData /></Error></Response>`)
	}
	mb := ""
	switch {
	case checkNoDoctype(body) != nil || xml.Unmarshal(body, &req) != nil:
		poxError("600", "Invalid Request")
	case strings.TrimSpace(req.Request.AcceptableResponseSchema) != nsPOXOutlook:
		poxError("601", "Provider is not available")
	default:
		mb = strings.TrimSpace(req.Request.EMailAddress)
		entry.Email = mb
		b := s.behavior(mb).on(r.Host)
		u, known := s.user(mb)
		switch {
		case b.ErrorCode == "RedirectAddress":
			out.WriteString(`<Response xmlns="` + nsPOXOutlook + `"><Account><Action>redirectAddr</Action><RedirectAddr>`)
			esc(b.RedirectTarget)
			out.WriteString(`</RedirectAddr></Account></Response>`)
		case b.ErrorCode == "RedirectUrl":
			out.WriteString(`<Response xmlns="` + nsPOXOutlook + `"><Account><Action>redirectUrl</Action><RedirectUrl>`)
			esc(b.RedirectTarget)
			out.WriteString(`</RedirectUrl></Account></Response>`)
		case !known || b.ErrorCode == "InvalidUser":
			poxError("500", "The email address can't be found.")
		default:
			v := settingValues(r.Host, u)
			omit := map[string]bool{}
			for _, o := range b.OmitSettings {
				omit[o] = true
			}
			out.WriteString(`<Response xmlns="` + nsPOXOutlook + `"><User><DisplayName>`)
			esc(u.Name)
			out.WriteString(`</DisplayName><AutoDiscoverSMTPAddress>`)
			esc(u.Email)
			out.WriteString(`</AutoDiscoverSMTPAddress></User><Account><AccountType>email</AccountType><Action>settings</Action><Protocol><Type>EXPR</Type>`)
			if !omit["ExternalEwsUrl"] && !omit["ExternalPhotosUrl"] {
				out.WriteString(`<EwsUrl>`)
				esc(v["ExternalEwsUrl"])
				out.WriteString(`</EwsUrl>`)
			}
			if !omit["ExternalEcpPhotoUrl"] {
				out.WriteString(`<EcpUrl>`)
				esc(v["ExternalEcpUrl"])
				out.WriteString(`</EcpUrl><EcpUrl-photo>`)
				esc(v["EcpPhotoUrlFragment"])
				out.WriteString(`</EcpUrl-photo>`)
			}
			out.WriteString(`</Protocol></Account></Response>`)
		}
	}
	out.WriteString(`</Autodiscover>`)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = w.Write(out.Bytes())
}

// on returns b for a request that came to host, or the normal behavior when
// b is limited to another host.
func (b AutodiscoverBehavior) on(host string) AutodiscoverBehavior {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if b.OnHost == "" || strings.EqualFold(host, b.OnHost) {
		return b
	}
	return AutodiscoverBehavior{}
}
