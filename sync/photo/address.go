package photo

import (
	"errors"
	"strings"
)

var (
	errEmailEmpty  = errors.New("email address is empty")
	errEmailLong   = errors.New("email address is longer than 254 characters")
	errEmailForm   = errors.New("not an email address (want name@domain)")
	errEmailLocal  = errors.New("email address has a character not allowed before the @")
	errEmailDomain = errors.New("email address has an invalid domain")
)

// NormalizeEmail checks that s is a plain SMTP address and returns it in
// lower case. It is strict on purpose, since the address goes into store
// keys, logs and outbound URLs: no display name, no quoting, and no path or
// escape characters ('/', '\', '%'), although RFC 5321 allows some of them.
func NormalizeEmail(s string) (string, error) {
	switch {
	case s == "":
		return "", errEmailEmpty
	case len(s) > 254:
		return "", errEmailLong
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.IndexByte(s, '@') != at {
		return "", errEmailForm
	}
	local, domain := s[:at], s[at+1:]
	if len(local) > 64 || local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return "", errEmailLocal
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		if !(isAlnum(c) || strings.IndexByte("!#$&'*+=?^_`{|}~.-", c) >= 0) {
			return "", errEmailLocal
		}
	}
	if !validDomain(domain) {
		return "", errEmailDomain
	}
	return strings.ToLower(s), nil
}

// validDomain accepts dotted DNS names of letters, digits and hyphens.
func validDomain(d string) bool {
	if len(d) > 253 || !strings.Contains(d, ".") {
		return false
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlnum(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// AccountEmail extracts the email from a SharePoint accountname: a plain
// address, or a claims login such as "i:0#.f|membership|adele@contoso.com".
func AccountEmail(account string) (string, error) {
	if i := strings.LastIndexByte(account, '|'); i >= 0 && strings.HasPrefix(account, "i:") {
		account = account[i+1:]
	}
	return NormalizeEmail(account)
}
