package autodiscover

import (
	"bytes"
	"errors"
	"strings"
)

// POX (plain old XML) Autodiscover (https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/pox-autodiscover-web-service-reference-for-exchange):
// the fallback where an
// Exchange does not offer the SOAP service. It has no photos URL; the EWS
// URL gives one by the "/s" rule, and EcpUrl + EcpUrl-photo the ECP page.
const (
	poxPath            = "/autodiscover/autodiscover.xml"
	nsPOXRequest       = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
	nsPOXResponse      = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
	nsPOXOutlook       = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
	poxResponseSchema  = nsPOXOutlook
	settingEcpFragment = "EcpUrl-photo"
)

// buildPOXRequest returns the POX request for mailbox, escaped.
func buildPOXRequest(mailbox string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="` + nsPOXRequest + `"><Request><EMailAddress>`)
	escape(&b, mailbox)
	b.WriteString(`</EMailAddress><AcceptableResponseSchema>` + poxResponseSchema + `</AcceptableResponseSchema></Request></Autodiscover>`)
	return b.Bytes()
}

// parsePOXResponse reads a POX answer into the same shape as a SOAP one:
// Action redirectAddr / redirectUrl become RedirectAddress / RedirectUrl, an
// Error becomes its ErrorCode, and the EXPR protocol (else EXCH) gives
// ExternalEwsUrl, ExternalPhotosUrl (EwsUrl by the "/s" rule) and
// ExternalEcpPhotoUrl (EcpUrl + EcpUrl-photo).
func parsePOXResponse(data []byte) (userResponse, error) {
	root, err := parseTree(data)
	if err != nil {
		return userResponse{}, err
	}
	if root.name.Space != nsPOXResponse || root.name.Local != "Autodiscover" {
		return userResponse{}, errors.New("root element is not a POX Autodiscover answer")
	}
	if e := root.child(nsPOXResponse, "Response").child(nsPOXResponse, "Error"); e != nil {
		return userResponse{code: "POX error " + e.child(nsPOXResponse, "ErrorCode").value(),
			message: e.child(nsPOXResponse, "Message").value()}, nil
	}
	resp := root.child(nsPOXOutlook, "Response")
	if resp == nil {
		return userResponse{}, errors.New("no outlook Response in the POX answer")
	}
	if e := resp.child(nsPOXOutlook, "Error"); e != nil {
		return userResponse{code: "POX error " + e.child(nsPOXOutlook, "ErrorCode").value(),
			message: e.child(nsPOXOutlook, "Message").value()}, nil
	}
	acct := resp.child(nsPOXOutlook, "Account")
	if acct == nil {
		return userResponse{}, errors.New("no Account in the POX answer")
	}
	switch action := acct.child(nsPOXOutlook, "Action").value(); action {
	case "redirectAddr":
		return userResponse{code: "RedirectAddress", target: acct.child(nsPOXOutlook, "RedirectAddr").value()}, nil
	case "redirectUrl":
		return userResponse{code: "RedirectUrl", target: acct.child(nsPOXOutlook, "RedirectUrl").value()}, nil
	case "settings", "":
	default:
		return userResponse{code: "POX action " + action}, nil
	}
	out := userResponse{code: "NoError", settings: map[string]string{}, settingErrors: map[string]string{}}
	if smtp := resp.child(nsPOXOutlook, "User").child(nsPOXOutlook, "AutoDiscoverSMTPAddress").value(); smtp != "" {
		out.settings[settingSMTPAddress] = smtp
	}
	if name := resp.child(nsPOXOutlook, "User").child(nsPOXOutlook, "DisplayName").value(); name != "" {
		out.settings[settingDisplayName] = name
	}
	var proto *node
	for _, want := range []string{"EXPR", "EXCH"} {
		for _, p := range acct.children(nsPOXOutlook, "Protocol") {
			if proto == nil && strings.EqualFold(p.child(nsPOXOutlook, "Type").value(), want) {
				proto = p
			}
		}
	}
	if proto == nil {
		out.settingErrors[settingExternalPhotos] = "no EXPR or EXCH protocol in the POX answer"
		return out, nil
	}
	if ews := strings.TrimRight(proto.child(nsPOXOutlook, "EwsUrl").value(), "/"); ews != "" {
		out.settings[settingExternalEWS] = ews
		photos := ews
		if strings.HasSuffix(strings.ToLower(ews), "exchange.asmx") {
			photos += "/s"
		}
		out.settings[settingExternalPhotos] = photos
	} else {
		out.settingErrors[settingExternalPhotos] = "POX answer has no EwsUrl"
	}
	ecp, frag := proto.child(nsPOXOutlook, "EcpUrl").value(), proto.child(nsPOXOutlook, settingEcpFragment).value()
	if ecp != "" && frag != "" {
		if !strings.HasSuffix(ecp, "/") {
			ecp += "/"
		}
		out.settings[settingExternalEcp] = ecp + strings.TrimLeft(frag, "/")
	}
	return out, nil
}
