package autodiscover

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"photosync/internal/untrusted"
	"strings"
)

// Namespace URIs as they go on the wire (http://, whatever the docs print).
const (
	nsSOAP         = "http://schemas.xmlsoap.org/soap/envelope/"
	nsAutodiscover = "http://schemas.microsoft.com/exchange/2010/Autodiscover"
	nsWSA          = "http://www.w3.org/2005/08/addressing"
	nsXSI          = "http://www.w3.org/2001/XMLSchema-instance"

	actionGetUserSettings = nsAutodiscover + "/Autodiscover/GetUserSettings"
	servicePath           = "/autodiscover/autodiscover.svc"
	serverVersion         = "Exchange2013"

	maxBody  = 1 << 20 // bytes read from one answer
	maxDepth = 64      // element nesting accepted in one answer
)

// Setting names requested, as Exchange spells them.
const (
	settingExternalPhotos = "ExternalPhotosUrl"
	settingInternalPhotos = "InternalPhotosUrl"
	settingExternalEcp    = "ExternalEcpPhotoUrl"
	settingInternalEcp    = "InternalEcpPhotoUrl"
	settingExternalEWS    = "ExternalEwsUrl"
	settingInternalEWS    = "InternalEwsUrl"
	settingSMTPAddress    = "AutoDiscoverSMTPAddress"
	settingDisplayName    = "UserDisplayName"
)

var requestedSettings = []string{
	settingExternalPhotos, settingInternalPhotos,
	settingExternalEcp, settingInternalEcp,
	settingExternalEWS, settingInternalEWS,
	settingSMTPAddress, settingDisplayName,
}

// buildRequest returns the GetUserSettings envelope for mailbox, posted to to.
// Both come from outside (a request, a redirect) and are escaped.
func buildRequest(to, mailbox string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` +
		`<soap:Envelope xmlns:soap="` + nsSOAP + `" xmlns:a="` + nsAutodiscover +
		`" xmlns:wsa="` + nsWSA + `" xmlns:xsi="` + nsXSI + `">` +
		`<soap:Header>` +
		`<a:RequestedServerVersion>` + serverVersion + `</a:RequestedServerVersion>` +
		`<wsa:Action>` + actionGetUserSettings + `</wsa:Action>` +
		`<wsa:To>`)
	escape(&b, to)
	b.WriteString(`</wsa:To></soap:Header>` +
		`<soap:Body><a:GetUserSettingsRequestMessage><a:Request>` +
		`<a:Users><a:User><a:Mailbox>`)
	escape(&b, mailbox)
	b.WriteString(`</a:Mailbox></a:User></a:Users><a:RequestedSettings>`)
	for _, s := range requestedSettings {
		b.WriteString(`<a:Setting>` + s + `</a:Setting>`)
	}
	b.WriteString(`</a:RequestedSettings></a:Request></a:GetUserSettingsRequestMessage>` +
		`</soap:Body></soap:Envelope>`)
	return b.Bytes()
}

func escape(b *bytes.Buffer, s string) {
	_ = xml.EscapeText(b, []byte(s)) // a bytes.Buffer never fails
}

// userResponse is the part of an answer that decides the next step: the
// request-level error when there is one, else the (only) UserResponse.
type userResponse struct {
	code, message, target string
	settings              map[string]string // StringSetting Name → Value
	settingErrors         map[string]string // SettingName → "ErrorCode: ErrorMessage"
}

// soapFault is a SOAP Fault in place of an answer.
type soapFault struct{ code, message string }

func (f *soapFault) Error() string {
	return fmt.Sprintf("SOAP fault %s: %s", untrusted.Text(f.code, 100), untrusted.Text(f.message, 300))
}

// parseResponse reads a GetUserSettings answer.
func parseResponse(data []byte) (userResponse, error) {
	root, err := parseTree(data)
	if err != nil {
		return userResponse{}, err
	}
	if root.name != (xml.Name{Space: nsSOAP, Local: "Envelope"}) {
		return userResponse{}, fmt.Errorf("root element {%s}%s is not a SOAP 1.1 envelope", root.name.Space, root.name.Local)
	}
	body := root.child(nsSOAP, "Body")
	if body == nil {
		return userResponse{}, errors.New("no SOAP body")
	}
	if f := body.child(nsSOAP, "Fault"); f != nil {
		return userResponse{}, &soapFault{code: f.child("", "faultcode").value(), message: f.child("", "faultstring").value()}
	}
	resp := body.child(nsAutodiscover, "GetUserSettingsResponseMessage").child(nsAutodiscover, "Response")
	if resp == nil {
		return userResponse{}, errors.New("no GetUserSettingsResponseMessage/Response in the body")
	}
	if code := resp.child(nsAutodiscover, "ErrorCode").value(); code != "" && code != "NoError" {
		return userResponse{code: code, message: resp.child(nsAutodiscover, "ErrorMessage").value()}, nil
	}
	ur := resp.child(nsAutodiscover, "UserResponses").child(nsAutodiscover, "UserResponse")
	if ur == nil {
		return userResponse{}, errors.New("no UserResponse")
	}
	out := userResponse{
		code:          ur.child(nsAutodiscover, "ErrorCode").value(),
		message:       ur.child(nsAutodiscover, "ErrorMessage").value(),
		settings:      map[string]string{},
		settingErrors: map[string]string{},
	}
	if out.code == "" {
		out.code = "NoError"
	}
	if t := ur.child(nsAutodiscover, "RedirectTarget"); t != nil && t.attr(nsXSI, "nil") != "true" {
		out.target = t.value()
	}
	for _, s := range ur.child(nsAutodiscover, "UserSettings").children(nsAutodiscover, "UserSetting") {
		// xsi:type is a QName; the prefix of its value cannot be resolved
		// through encoding/xml, so only the local part is compared.
		typ := s.attr(nsXSI, "type")
		if i := strings.LastIndexByte(typ, ':'); i >= 0 {
			typ = typ[i+1:]
		}
		if typ != "StringSetting" {
			continue
		}
		name := s.child(nsAutodiscover, "Name").value()
		if v := s.child(nsAutodiscover, "Value"); v != nil && v.attr(nsXSI, "nil") != "true" {
			out.settings[name] = v.value()
		}
	}
	for _, e := range ur.child(nsAutodiscover, "UserSettingErrors").children(nsAutodiscover, "UserSettingError") {
		name := e.child(nsAutodiscover, "SettingName").value()
		out.settingErrors[name] = strings.TrimSpace(e.child(nsAutodiscover, "ErrorCode").value() + ": " +
			e.child(nsAutodiscover, "ErrorMessage").value())
	}
	return out, nil
}

// node is one element of a parsed answer, names resolved to namespace URIs.
type node struct {
	name  xml.Name
	attrs []xml.Attr
	text  []byte
	kids  []*node
}

// child returns the first child named {space}local; nil on a nil node.
func (n *node) child(space, local string) *node {
	if n == nil {
		return nil
	}
	for _, k := range n.kids {
		if k.name.Space == space && k.name.Local == local {
			return k
		}
	}
	return nil
}

// children returns every child named {space}local.
func (n *node) children(space, local string) []*node {
	if n == nil {
		return nil
	}
	var out []*node
	for _, k := range n.kids {
		if k.name.Space == space && k.name.Local == local {
			out = append(out, k)
		}
	}
	return out
}

// attr returns the value of attribute {space}local, "" when absent.
func (n *node) attr(space, local string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.attrs {
		if a.Name.Space == space && a.Name.Local == local {
			return strings.TrimSpace(a.Value)
		}
	}
	return ""
}

// value returns the trimmed text of n, "" on a nil node.
func (n *node) value() string {
	if n == nil {
		return ""
	}
	return strings.TrimSpace(string(n.text))
}

// parseTree parses one XML document into nodes. It refuses any directive
// (DOCTYPE and its entities), nesting deeper than maxDepth and more than one
// root. encoding/xml knows only the five predefined entities.
func parseTree(data []byte) (*node, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var root *node
	var stack []*node
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("bad XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, errors.New("DOCTYPE or other XML directive refused")
		case xml.StartElement:
			if len(stack) >= maxDepth {
				return nil, fmt.Errorf("XML nested deeper than %d elements", maxDepth)
			}
			n := &node{name: t.Name, attrs: t.Attr}
			switch {
			case len(stack) > 0:
				parent := stack[len(stack)-1]
				parent.kids = append(parent.kids, n)
			case root != nil:
				return nil, errors.New("XML has more than one root element")
			default:
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				top := stack[len(stack)-1]
				top.text = append(top.text, t...)
			}
		}
	}
	if root == nil {
		return nil, errors.New("empty XML document")
	}
	return root, nil
}
