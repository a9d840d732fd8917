package sync

import (
	"strings"

	"photosync/sync/photo"
)

// Temporary aliases while callers move to sync/photo; deleted at the end
// of the move.
var (
	Sizes          = photo.Sizes
	NormalizeEmail = photo.NormalizeEmail
	AccountEmail   = photo.AccountEmail
	CanonicalSize  = photo.CanonicalSize
)

const DefaultSize = photo.DefaultSize

var sharePointSizes = map[string]string{"S": "HR48x48", "M": "HR96x96", "L": "HR240x240"}

// SharePointSize maps userphoto.aspx's S, M and L.
func SharePointSize(s string) (string, bool) {
	if s == "" {
		s = "M"
	}
	if size, ok := sharePointSizes[strings.ToUpper(s)]; ok {
		return size, true
	}
	return CanonicalSize(s)
}
