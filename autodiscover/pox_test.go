package autodiscover

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

func poxAnswer(account string) string {
	return `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="` + nsPOXResponse + `"><Response xmlns="` + nsPOXOutlook + `">` +
		`<User><AutoDiscoverSMTPAddress>alice@contoso.com</AutoDiscoverSMTPAddress></User><Account>` + account + `</Account></Response></Autodiscover>`
}

func TestParsePOXResponse(t *testing.T) {
	tests := []struct {
		name, body           string
		code, target, photos string
		ecp, err             string
	}{
		{name: "EXPR wins over EXCH", body: poxAnswer(`<Action>settings</Action>` +
			`<Protocol><Type>EXCH</Type><EwsUrl>https://internal.contoso.com/EWS/Exchange.asmx</EwsUrl></Protocol>` +
			`<Protocol><Type>EXPR</Type><EwsUrl>https://mail.contoso.com/EWS/Exchange.asmx</EwsUrl>` +
			`<EcpUrl>https://mail.contoso.com/ecp</EcpUrl><EcpUrl-photo>PersonalSettings/EditAccount.aspx?chgPhoto=1</EcpUrl-photo></Protocol>`),
			code: "NoError", photos: "https://mail.contoso.com/EWS/Exchange.asmx/s",
			ecp: "https://mail.contoso.com/ecp/PersonalSettings/EditAccount.aspx?chgPhoto=1"},
		{name: "no fragment, no ECP photo URL", body: poxAnswer(`<Action>settings</Action><Protocol><Type>EXPR</Type>` +
			`<EwsUrl>https://mail.contoso.com/EWS/Exchange.asmx</EwsUrl><EcpUrl>https://mail.contoso.com/ecp/</EcpUrl></Protocol>`),
			code: "NoError", photos: "https://mail.contoso.com/EWS/Exchange.asmx/s"},
		{name: "redirectAddr", body: poxAnswer(`<Action>redirectAddr</Action><RedirectAddr>bob@fabrikam.com</RedirectAddr>`),
			code: "RedirectAddress", target: "bob@fabrikam.com"},
		{name: "redirectUrl", body: poxAnswer(`<Action>redirectUrl</Action><RedirectUrl>https://x.contoso.com/autodiscover/autodiscover.xml</RedirectUrl>`),
			code: "RedirectUrl", target: "https://x.contoso.com/autodiscover/autodiscover.xml"},
		{name: "error", body: `<Autodiscover xmlns="` + nsPOXResponse + `"><Response><Error><ErrorCode>500</ErrorCode><Message>The email address can't be found.</Message></Error></Response></Autodiscover>`,
			code: "POX error 500"},
		{name: "SOAP body", body: allSettings("alice@contoso.com"), err: "not a POX"},
		{name: "entity", body: `<!DOCTYPE a [<!ENTITY x "y">]><a/>`, err: "DOCTYPE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ur, err := parsePOXResponse([]byte(tt.body))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || ur.code != tt.code || ur.target != tt.target ||
				ur.settings[settingExternalPhotos] != tt.photos || ur.settings[settingExternalEcp] != tt.ecp {
				t.Fatalf("parsePOXResponse = %+v, %v", ur, err)
			}
		})
	}
}

// TestSOAPNotOfferedAsksPOX checks the POX request on the wire after a 404.
func TestSOAPNotOfferedAsksPOX(t *testing.T) {
	f := newFake(t, func(r seen) reply {
		if r.Path == servicePath {
			return reply{status: http.StatusNotFound}
		}
		return reply{body: poxAnswer(`<Action>settings</Action><Protocol><Type>EXPR</Type><EwsUrl>https://mail.contoso.com/EWS/Exchange.asmx</EwsUrl></Protocol>`)}
	})
	c := newClient(t, f, nil, nil)
	s, err := c.Lookup(context.Background(), "alice@contoso.com")
	if err != nil || s.ExternalPhotosURL != "https://mail.contoso.com/EWS/Exchange.asmx/s" {
		t.Fatalf("Lookup = %+v, %v", s, err)
	}
	reqs := f.requests()
	if len(reqs) != 2 || reqs[1].Path != poxPath || !strings.Contains(reqs[1].Raw, "<EMailAddress>alice@contoso.com</EMailAddress>") ||
		!strings.HasPrefix(reqs[1].Auth, "Bearer ") {
		t.Fatalf("requests = %+v", reqs)
	}
}
