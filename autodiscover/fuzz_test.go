package autodiscover

import (
	"strings"
	"testing"
)

// FuzzParseResponse feeds the GetUserSettings answer parser arbitrary
// bodies. It must never panic, and what it accepts must keep its
// invariants. The seeds (below and in testdata/fuzz/FuzzParseResponse) run
// in every go test; to fuzz longer:
//
//	go test ./autodiscover -run '^$' -fuzz FuzzParseResponse -fuzztime 5m
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte(allSettings("alice@contoso.com")))
	f.Add([]byte(userAnswer("RedirectAddress", "Redirection address.", "bob@fabrikam.com", "", "")))
	f.Add([]byte(userAnswer("NoError", "", "", notAvailable("ExternalPhotosUrl"), "")))
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>`))
	f.Add([]byte(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>a:ErrorServerBusy</faultcode><faultstring>busy</faultstring></s:Fault></s:Body></s:Envelope>`))
	f.Add([]byte(strings.Repeat("<a>", maxDepth+1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		ur, err := parseResponse(data)
		if err != nil {
			return
		}
		if ur.code == "" {
			t.Fatalf("accepted answer without a code: %+v", ur)
		}
		if ur.code == "NoError" && ur.settings == nil {
			t.Fatalf("NoError answer without a settings map")
		}
	})
}
