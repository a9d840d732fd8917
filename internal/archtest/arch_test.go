package archtest

import (
	"go/build"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "photosync"

// allowed lists, for each package, the photosync packages it may import
// (not counting its tests). A package missing here fails the test: a new
// package gets a row here and in ARCHITECTURE.md.
var allowed = map[string][]string{
	"cmd/photosync": {"*"},
	"configs": {"sync", "sync/photo", "sync/exchange", "sync/graph", "sync/directory",
		"autodiscover", "oauth", "store", "web"},
	"web":                          {"sync", "sync/photo"},
	"admin":                        {"sync", "sync/photo"},
	"sync":                         {"store", "sync/photo", "sync/scale", "internal/spawn"},
	"sync/photo":                   {"sync/photo/baseline"},
	"sync/photo/baseline":          {},
	"sync/photo/phototest":         {},
	"sync/scale":                   {"sync/photo/baseline"},
	"sync/backoff":                 {},
	"sync/exchange":                {"sync/photo", "sync/backoff", "autodiscover", "internal/untrusted"},
	"sync/graph":                   {"sync/photo", "sync/backoff", "oauth", "internal/untrusted"},
	"sync/directory":               {"sync/photo", "internal/untrusted"},
	"sync/exchange/exchangetest":   {"internal/testpki", "sync/photo/phototest"},
	"sync/graph/graphtest":         {"internal/testpki"},
	"sync/directory/directorytest": {"internal/testpki"},
	"autodiscover":                 {"internal/untrusted", "internal/spawn"},
	"oauth":                        {"internal/untrusted"},
	"store":                        {},
	"store/storetest":              {"store"},
	"store/redistest":              {"internal/testpki"},
	"internal/untrusted":           {},
	"internal/spawn":               {},
	"internal/testclock":           {},
	"internal/testpki":             {},
	"internal/archtest":            {},
	"deploy":                       {},
	"bench/cmd/benchsim":           {"*"},
	"bench/cmd/burst":              {"*"},
	"bench/cmd/bare":               {},
	"bench/cmd/plain":              {"*"},
}

// thirdParty lists third-party imports only some packages may make.
var thirdParty = map[string][]string{
	"github.com/labstack/echo/v4": {"web"},
}

func TestImportRules(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(path, 0)
		if err != nil {
			return nil // no Go files here
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		may, ok := allowed[rel]
		if !ok {
			t.Errorf("%s is not in the import rules: add it to ARCHITECTURE.md and to allowed", rel)
			return nil
		}
		seen++
		for _, imp := range pkg.Imports {
			if who, ok := thirdParty[imp]; ok && !slices.Contains(who, rel) {
				t.Errorf("%s imports %s; only %v may", rel, imp, who)
			}
			ours, ok := strings.CutPrefix(imp, module+"/")
			if !ok || slices.Contains(may, "*") {
				continue
			}
			if !slices.Contains(may, ours) {
				t.Errorf("%s imports %s; it may import only %v", rel, ours, may)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 20 {
		t.Fatalf("checked %d packages; the walk did not find the module", seen)
	}
}
