package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"photosync/configs"
	"photosync/oauth"
	"photosync/sync/exchange/exchangetest"
	"photosync/web"
)

// demoUsers are the simulated Exchange's people: most have a mailbox photo,
// one only a directory thumbnail, three none at all (the people page shows
// their initials).
var demoUsers = []exchangetest.User{
	{Email: "adele.vance@contoso.com", Name: "Adele Vance", Photo: true},
	{Email: "alex.wilber@contoso.com", Name: "Alex Wilber", Photo: true},
	{Email: "diego.siciliani@contoso.com", Name: "Diego Siciliani", Photo: true},
	{Email: "grady.archie@contoso.com", Name: "Grady Archie", Photo: true},
	{Email: "isaiah.langer@contoso.com", Name: "Isaiah Langer", Photo: true},
	{Email: "johanna.lorenz@contoso.com", Name: "Johanna Lorenz", ADThumbnail: true},
	{Email: "lee.gu@contoso.com", Name: "Lee Gu"},
	{Email: "megan.bowen@contoso.com", Name: "Megan Bowen"},
	{Email: "nestor.wilke@contoso.com", Name: "Nestor Wilke"},
}

func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address for photosync (another free port is used if it is taken)")
	runFor := fs.Duration("for", 0, "stop after this long (default: until interrupted)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *runFor > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *runFor)
		defer cancel()
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "photosync demo: %s is taken (%v); using another port\n", *listen, err)
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}
	return demo(ctx, ln, stdout, stderr)
}

// demo runs photosync on ln, on a throwaway embedded store, against an
// in-process Exchange simulator it trusts through a freshly made S2S
// certificate: the same wiring as serve, with the simulator in Exchange's place.
func demo(ctx context.Context, ln net.Listener, stdout, stderr io.Writer) error {
	dir, err := os.MkdirTemp("", "photosync-demo-")
	if err != nil {
		ln.Close()
		return err
	}
	defer os.RemoveAll(dir)

	base := "http://" + ln.Addr().String()
	sim := exchangetest.NewServer(exchangetest.Options{
		PartnerMetadataURL: base + "/_layouts/15/metadata/json/1",
		Users:              demoUsers,
	})
	defer sim.Close()

	certPEM, keyPEM, err := oauth.GenerateKeyPair("photosync demo", 30*24*time.Hour)
	if err != nil {
		ln.Close()
		return err
	}
	files := map[string][]byte{"s2s.crt": certPEM, "s2s.key": keyPEM, "exchange-ca.pem": sim.CACertPEM()}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			ln.Close()
			return err
		}
	}

	cfg := configs.Default()
	cfg.Listen = ln.Addr().String()
	cfg.Photos.Trigger = configs.TriggerAny // the demo's browser is anonymous
	cfg.Photos.Placeholder = "initials"     // for the people without a photo
	// The first page load pulls everyone at once: let it wait for the photos
	// rather than show placeholders on a busy machine.
	cfg.Photos.ColdDeadline = configs.Duration(10 * time.Second)
	cfg.Exchange.AutodiscoverDomain = sim.Host()
	cfg.Exchange.CAFile = filepath.Join(dir, "exchange-ca.pem")
	cfg.S2S.Certificate = filepath.Join(dir, "s2s.crt")
	cfg.S2S.Key = filepath.Join(dir, "s2s.key")
	cfg.S2S.Realm = oauth.NewRealm()
	cfg.Store.Path = filepath.Join(dir, "data")
	cfg.Log.Level = "info"
	cfg.Admin.Listen = "127.0.0.1:0" // a free port, so demos and tests never collide
	if err := cfg.Validate(); err != nil {
		ln.Close()
		return err
	}

	people := make([]web.Person, len(demoUsers))
	for i, u := range demoUsers {
		people[i] = web.Person{Email: u.Email, Name: u.Name}
	}
	fmt.Fprintf(stdout, "photosync demo: Exchange simulator at %s (realm %s)\n", sim.URL(), cfg.S2S.Realm)
	fmt.Fprintf(stdout, "photosync demo: open %s/ to see the people directory; Ctrl-C to stop\n", base)
	fmt.Fprintf(stdout, "photosync demo: one photo: %s/photos/%s?size=HR240x240\n", base, demoUsers[0].Email)
	return serve(ctx, cfg, ln, newLogger(cfg.Log, stderr), people, nil)
}
