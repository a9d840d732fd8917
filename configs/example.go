package configs

import _ "embed" // for Example

// Example is photosync.example.yaml, the example config that documents every
// key with its default. It is embedded so that `photosync config example`
// can print it from a binary installed without the source tree.
//
//go:embed photosync.example.yaml
var Example []byte
