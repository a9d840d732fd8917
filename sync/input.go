package sync

import (
	"errors"
	"strings"
)

// Sizes are the photo sizes Exchange 2013 serves, smallest first.
var Sizes = []string{"HR48x48", "HR64x64", "HR96x96", "HR120x120", "HR240x240", "HR360x360", "HR432x432", "HR504x504", "HR648x648"}

// DefaultSize is served when a request names none.
const DefaultSize = "HR96x96"

// SharePoint's userphoto.aspx sizes: S is 48x48, M 72x72 and L up to 300 px
// wide. Each maps to the smallest Exchange size that covers it (L: the
// largest that fits within 300 px).
var sharePointSizes = map[string]string{"S": "HR48x48", "M": "HR96x96", "L": "HR240x240"}

// CanonicalSize returns the Exchange size code for s, accepting any letter
// case ("hr96X96"), or false when s is not one of the nine sizes.
func CanonicalSize(s string) (string, bool) {
	for _, size := range Sizes {
		if strings.EqualFold(s, size) {
			return size, true
		}
	}
	return "", false
}

// SharePointSize maps userphoto.aspx's S, M and L (any case; "" is M). As
// a photosync extension it also takes an Exchange size code, so pages can
// build srcset from the HR sizes and still get the placeholder.
func SharePointSize(s string) (string, bool) {
	if s == "" {
		s = "M"
	}
	if size, ok := sharePointSizes[strings.ToUpper(s)]; ok {
		return size, true
	}
	return CanonicalSize(s)
}

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
	for _, label := range strings.Split(d, ".") {
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
