package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"go.yaml.in/yaml/v3"

	"photosync/configs"
	"photosync/store"
)

// masked replaces a secret in printed configuration.
const masked = "********"

// configCmd runs `photosync config check FILE` and `photosync config
// example`.
func configCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && helpArgs(args[:1]) {
		for _, name := range []string{"config check", "config example"} {
			writeHelp(stderr, name, newFlags(name, stderr)) // run pointed stderr at stdout
			fmt.Fprintln(stderr)
		}
		return flag.ErrHelp
	}
	if len(args) > 0 && args[0] == "example" {
		return configExampleCmd(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(stderr, "photosync config: want: photosync config check FILE, or photosync config example")
		return errUsage
	}
	return configCheckCmd(args[1:], stdout, stderr)
}

// configExampleCmd prints the example config embedded in the binary.
func configExampleCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("config example", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	_, err := stdout.Write(configs.Example)
	return err
}

// configCheckCmd validates FILE and prints the effective configuration,
// defaults filled in and secrets masked.
func configCheckCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("config check", stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "photosync config check: want one FILE")
		return errUsage
	}
	cfg, err := checkConfig(fs.Arg(0), stderr, "photosync config check")
	if err != nil {
		return err
	}
	b, err := yaml.Marshal(maskSecrets(cfg))
	if err != nil {
		return fmt.Errorf("printing the configuration: %w", err)
	}
	fmt.Fprintf(stdout, "# %s: ok; effective configuration, secrets masked\n%s", fs.Arg(0), b)
	return nil
}

// checkConfig loads the config file at path as serve loads it: the file,
// then every certificate, key and CA bundle it names, with the code serve
// uses (loadSecrets), so that a check that passes means serve can start.
// What serve would run with but Exchange may not reach (s2s.public_url
// unset, loopback or http) is a warning written to stderr after prog, not
// an error.
func checkConfig(path string, stderr io.Writer, prog string) (configs.Config, error) {
	cfg, err := configs.Load(path)
	if err != nil {
		return cfg, err
	}
	if _, err := loadSecrets(cfg); err != nil {
		return cfg, fmt.Errorf("configs: %s: %w", path, err)
	}
	if cfg.Store.RedisURL != "" {
		// serve's own constructor, which parses the URL and loads the TLS
		// files without connecting, so that check and serve never disagree.
		r, err := store.NewRedis(cfg.Store.RedisURL, redisOptions(cfg.Store, slog.New(slog.DiscardHandler)))
		if err != nil {
			return cfg, fmt.Errorf("configs: %s: store.redis_url: %w", path, err)
		}
		r.Close()
	}
	if cfg.Photos.ImportEnabled && cfg.UsesExchange() {
		if w := publicURLWarning(metadataURL(cfg), cfg.S2S.PublicURL != ""); w != "" {
			fmt.Fprintf(stderr, "%s: warning: %s\n", prog, w)
		}
	}
	return cfg, nil
}

// maskSecrets hides every secret a config may hold: the Redis password,
// the admin token, Graph's client secret and the directory's bind
// password. (Keys are files, and only their paths are printed.)
func maskSecrets(c configs.Config) configs.Config {
	if c.Store.RedisURL != "" {
		c.Store.RedisURL = store.MaskURL(c.Store.RedisURL)
	}
	for _, secret := range []*string{&c.Admin.Token, &c.Graph.ClientSecret, &c.Directory.BindPassword} {
		if *secret != "" {
			*secret = masked
		}
	}
	return c
}
