package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
	"time"

	"photosync/configs"
	"photosync/internal/untrusted"
	"photosync/store"
	psync "photosync/sync"
	"photosync/sync/photo"
)

// inspection is inspect's JSON output: the engine's report and where the
// bytes are.
type inspection struct {
	Store string `json:"store"`
	psync.Report
}

func inspectCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("inspect", stderr)
	path := fs.String("config", "", "the admin config file (YAML)")
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	owner, err := oneEmail(fs, args)
	if err != nil {
		return err
	}
	cfg, a, err := operatorApp(ctx, *path, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	r, err := a.engine.Inspect(ctx, owner)
	if err != nil {
		return fmt.Errorf("inspecting: %w", err)
	}
	in := inspection{Store: storeName(cfg.Store), Report: r}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(in)
	}
	return writeInspection(stdout, in)
}

// writeInspection prints in for people: a line per size.
func writeInspection(w io.Writer, in inspection) error {
	fmt.Fprintf(w, "%s\nstore: %s\n\n", in.Owner, in.Store)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SIZE\tSTATE\tSOURCE\tBYTES\tTYPE\tETAG\tPULLED\tTIMER\tUNTIL\tLAST ERROR")
	for _, s := range in.Sizes {
		if !s.Stored {
			state := "not stored"
			if s.StoreError != "" {
				state = "store error: " + s.StoreError
			}
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\n", s.Size, state)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Size, s.State, dash(escaped(s.Source)), s.Bytes, dash(s.ContentType),
			dash(s.ETag), when(s.PulledAt), s.Timer, when(s.TimerUntil), dash(escaped(s.Error)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if ad := in.Autodiscover; ad != nil {
		fmt.Fprintf(w, "\nautodiscover (cached until %s):\n", when(ad.CachedUntil))
		if ad.Error != "" {
			fmt.Fprintf(w, "  failed: %s\n", escaped(ad.Error))
		} else {
			fmt.Fprintf(w, "  ExternalPhotosUrl   %s\n  ExternalEcpPhotoUrl %s\n", escaped(ad.PhotosURL), dash(escaped(ad.EcpPhotoURL)))
		}
		for _, hop := range ad.Redirects {
			fmt.Fprintf(w, "  via %s\n", escaped(hop))
		}
	}
	return nil
}

// escaped makes what came from the master one printable line, so that no
// control character reaches the terminal.
func escaped(s string) string { return untrusted.Text(s, 0) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// storeName says where the bytes are, with no password.
func storeName(s configs.Store) string {
	if s.RedisURL != "" {
		return "redis " + store.MaskURL(s.RedisURL)
	}
	return "embedded " + filepath.Join(s.Path, "photosync.db")
}

// operatorApp loads the config at path and wires photosync without the
// master: inspect and forget only read and write the store.
func operatorApp(ctx context.Context, path string, stderr io.Writer) (configs.Config, *app, error) {
	cfg, err := configs.Load(path)
	if err != nil {
		return cfg, nil, err
	}
	cfg.Photos.ImportEnabled = false
	a, err := buildQuiet(ctx, cfg, stderr)
	return cfg, a, err
}

// oneEmail parses --config FILE EMAIL, flags before or after the address,
// and returns the address normalised.
func oneEmail(fs *flag.FlagSet, args []string) (string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", err
			}
			return "", errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if fs.Lookup("config").Value.String() == "" || len(rest) != 1 {
		fmt.Fprintf(fs.Output(), "%s: want --config FILE EMAIL\n", fs.Name())
		return "", errUsage
	}
	owner, err := photo.NormalizeEmail(rest[0])
	if err != nil {
		fmt.Fprintf(fs.Output(), "%s: %q: %v\n", fs.Name(), rest[0], err)
		return "", errUsage
	}
	return owner, nil
}
