package configs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"photosync/oauth"
)

// TestEmbeddedExample checks that the example the binary prints is the file
// in the tree and a valid config: parsed as printed, and loaded from a
// folder that holds the files it names (a generated S2S pair), as an admin
// would after `photosync config example > photosync.yaml` and `photosync
// keygen`.
func TestEmbeddedExample(t *testing.T) {
	onDisk, err := os.ReadFile("photosync.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(Example, onDisk) {
		t.Fatal("the embedded Example differs from photosync.example.yaml")
	}
	certPEM, keyPEM, err := oauth.GenerateKeyPair("photosync example test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		files map[string][]byte // written beside the config; nil: Parse only
	}{
		{name: "parsed as printed"},
		{name: "loaded beside its files", files: map[string][]byte{"s2s.crt": certPEM, "s2s.key": keyPEM}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			var err error
			if tt.files == nil {
				c, err = Parse(Example)
			} else {
				dir := t.TempDir()
				for name, b := range tt.files {
					if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
						t.Fatal(err)
					}
				}
				path := filepath.Join(dir, "photosync.yaml")
				if err := os.WriteFile(path, Example, 0o600); err != nil {
					t.Fatal(err)
				}
				c, err = Load(path)
			}
			if err != nil {
				t.Fatalf("example config: %v", err)
			}
			if c.Exchange.AutodiscoverDomain == "" || c.S2S.Realm == "" {
				t.Errorf("example lacks the required keys: %+v", c)
			}
		})
	}
}
