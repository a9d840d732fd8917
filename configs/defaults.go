package configs

import (
	"time"

	"photosync/autodiscover"
	"photosync/oauth"
	"photosync/store"
	psync "photosync/sync"
	"photosync/sync/directory"
	"photosync/sync/exchange"
	"photosync/sync/graph"
	"photosync/sync/photo"
	"photosync/web"
)

// SharePointClientID is SharePoint's well-known principal ID, the default
// s2s.client_id.
const SharePointClientID = oauth.SharePointID

// Default returns the configuration used for every key the file leaves out.
// A default that a package applies to its own zero value is taken from that
// package, so each is written once; the rest (listen addresses, paths, the
// booleans that default to true) are photosync's own and live here.
func Default() Config {
	return Config{
		Listen: "127.0.0.1:8080",
		Photos: Photos{
			ImportEnabled:   true,
			Expiration:      Hours(psync.DefaultExpiration),
			ErrorExpiration: Hours(psync.DefaultErrorExpiration),
			Trigger:         TriggerSelf,
			MaxBytes:        photo.DefaultMaxBytes,
			PullTimeout:     Duration(psync.DefaultPullTimeout),
			ColdDeadline:    Duration(psync.DefaultColdDeadline),
			MaxStale:        Duration(psync.DefaultMaxStale),
			DeriveSizes:     true,
			JPEGQuality:     psync.DefaultJPEGQuality,
			Placeholder:     "silhouette",
			MaxPixels:       photo.DefaultMaxPixels,
			DecodeMemory:    photo.DefaultDecodeMemory,
		},
		Exchange: Exchange{
			Timeout:              Duration(autodiscover.DefaultTimeout),
			AutodiscoverCache:    Duration(autodiscover.DefaultCacheTTL),
			AutodiscoverFallback: true,
			MaxConcurrency:       exchange.DefaultMaxConcurrency,
		},
		S2S: S2S{
			ClientID:      SharePointClientID,
			TokenLifetime: Duration(oauth.DefaultLifetime),
			ClockSkew:     Duration(oauth.DefaultClockSkew),
		},
		Store: Store{Path: "./data", RedisMode: string(store.RedisAuto), RedisPrefix: store.DefaultPrefix,
			MemoryLimit: 64 << 20, MemoryTTL: Duration(30 * time.Second)},
		Identity:  Identity{Header: web.DefaultIdentityHeader, TrustedProxies: []string{"127.0.0.1/32", "::1/128"}},
		Log:       Log{Level: "info", Format: "text"},
		Admin:     Admin{Listen: "127.0.0.1:9090"},
		Sources:   []string{SourceExchange},
		Directory: Directory{Timeout: Duration(directory.DefaultTimeout), PoolSize: directory.DefaultPoolSize},
		Graph:     Graph{Timeout: Duration(graph.DefaultTimeout)},
	}
}
