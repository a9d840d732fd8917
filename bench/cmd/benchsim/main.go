// Command benchsim runs the Exchange simulator for bench/run, with two
// things the simulator alone lacks, both on one plain-HTTP loopback listener:
//
//   - /origin/photos/{email}?size=HR…: the simulator's photo bytes and
//     headers (ETag, Cache-Control: private, image/jpeg) without a token.
//     nginx cannot mint Exchange's S2S tokens, so this stands for
//     GetUserPhoto behind nginx proxy_cache; it answers from the same
//     simulator, after the same injected delay.
//   - /admin/…: master and origin call counts, the partner metadata URL and
//     the photo delay, for the script.
//
// Mailboxes are person000000@contoso.com … and all have a photo, drawn with
// exchangetest's LightPhotos so 100,000 of them stay light.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"photosync/sync/exchange/exchangetest"
)

func main() {
	users := flag.Int("users", 1000, "mailboxes person000000@contoso.com …")
	dir := flag.String("dir", ".", "folder for ca.pem, host and admin (the addresses)")
	flag.Parse()

	sim := exchangetest.NewServer(exchangetest.Options{LightPhotos: true})
	defer sim.Close()
	for i := 0; i < *users; i++ {
		sim.AddUser(exchangetest.User{Email: Email(i), Name: fmt.Sprintf("Person %d", i), Photo: true})
	}

	var delay atomic.Int64
	var originCalls atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /origin/photos/{email}", func(w http.ResponseWriter, r *http.Request) {
		originCalls.Add(1)
		if d := time.Duration(delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		body, etag, ok := sim.PhotoBytes(r.PathValue("email"), r.URL.Query().Get("size"))
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("ETag", etag)
		h.Set("Cache-Control", "private")
		h.Set("Content-Type", "image/jpeg")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})
	mux.HandleFunc("GET /admin/counts", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int64{
			"master_photo_calls": int64(sim.PhotoRequests()),
			"origin_calls":       originCalls.Load(),
		})
	})
	mux.HandleFunc("POST /admin/partner", func(w http.ResponseWriter, r *http.Request) {
		sim.SetPartnerMetadataURL(r.URL.Query().Get("url"))
	})
	mux.HandleFunc("POST /admin/delay", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("d"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sim.SetPhotoDelay(d)
		delay.Store(int64(d))
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"ca.pem": sim.CACertPEM(),
		"host":   []byte(sim.Host()),
		"admin":  []byte(ln.Addr().String()),
	} {
		if err := os.WriteFile(filepath.Join(*dir, name), b, 0o600); err != nil {
			log.Fatal(err)
		}
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		<-sig
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

// Email is the address of mailbox i.
func Email(i int) string { return fmt.Sprintf("person%06d@contoso.com", i) }
