package photo

import (
	"strconv"
	"strings"
)

// Sizes are the photo sizes Exchange 2013 serves, smallest first.
var Sizes = []string{"HR48x48", "HR64x64", "HR96x96", "HR120x120", "HR240x240", "HR360x360", "HR432x432", "HR504x504", "HR648x648"}

// DefaultSize is served when a request names none.
const DefaultSize = "HR96x96"

// MasterSize is the largest size, the one every smaller size can be scaled
// from.
const MasterSize = "HR648x648"

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

// Pixels is the edge length of a size code: 96 for "HR96x96". It panics on
// a code that is not one of Sizes: sizes are validated at the edge.
func Pixels(size string) int {
	n := 0
	for i := 2; i < len(size) && size[i] >= '0' && size[i] <= '9'; i++ {
		n = n*10 + int(size[i]-'0')
	}
	if n == 0 || !strings.HasPrefix(size, "HR") {
		panic("photo: bad size code " + strconv.Quote(size)) // programmer error
	}
	return n
}

// GraphSize returns Microsoft Graph's name for one of our sizes
// (HR96x96 → 96x96), or false when size is not one of Sizes.
func GraphSize(size string) (string, bool) {
	if _, ok := CanonicalSize(size); !ok || size[:2] != "HR" {
		return "", false
	}
	return strings.ToLower(size[2:]), true
}

// FromGraphSize returns our size for Graph's name (96x96 → HR96x96), or
// false when Graph has no such size.
func FromGraphSize(g string) (string, bool) {
	if g == "" || !(g[0] >= '0' && g[0] <= '9') {
		return "", false
	}
	return CanonicalSize("HR" + g)
}
