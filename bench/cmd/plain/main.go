// Command plain is bench/run's reference for a bulk warm: a client that,
// for each person, asks the simulator's Autodiscover where the photos are
// and fetches one size with GetUserPhoto, n at a time, and keeps nothing.
// It is photosync's Exchange source (Autodiscover, an S2S token per
// person, GetUserPhoto over TLS) without the engine, the store or any
// scaling: the pace of the master alone, to compare `photosync warm` with.
//
// It prints one JSON line: people, seconds, people per second, statuses.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"photosync/autodiscover"
	"photosync/oauth"
	"photosync/sync/exchange"
)

func main() {
	domain := flag.String("domain", "", "the autodiscover domain (host:port)")
	caFile := flag.String("ca", "", "PEM roots for the simulator's TLS")
	certFile := flag.String("cert", "", "S2S certificate (the one photosync publishes)")
	keyFile := flag.String("key", "", "S2S key")
	realm := flag.String("realm", "", "S2S realm")
	metadataURL := flag.String("metadata-url", "", "photosync's metadata URL, as its issuer names it")
	from := flag.String("from", "", "file of addresses, one a line")
	size := flag.String("size", "HR648x648", "the size to fetch")
	n := flag.Int("concurrency", 16, "people in flight at once")
	flag.Parse()

	cert, key, err := oauth.LoadKeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatal(err)
	}
	issuer, err := oauth.New(oauth.Options{Certificate: cert, Key: key, Realm: *realm, MetadataURL: *metadataURL})
	if err != nil {
		log.Fatal(err)
	}
	pem, err := os.ReadFile(*caFile)
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = max(32, *n)
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	locator, err := autodiscover.New(autodiscover.Options{Domain: *domain, Tokens: issuer, HTTPClient: client})
	if err != nil {
		log.Fatal(err)
	}
	src, err := exchange.New(exchange.Options{Locator: locator, Tokens: issuer, Client: client, MaxConcurrency: *n})
	if err != nil {
		log.Fatal(err)
	}
	list, err := os.ReadFile(*from)
	if err != nil {
		log.Fatal(err)
	}
	people := strings.Fields(string(list))

	ctx := context.Background()
	var mu sync.Mutex
	statuses := map[string]int{}
	next := make(chan string)
	var wg sync.WaitGroup
	start := time.Now()
	for range *n {
		wg.Go(func() {
			for owner := range next {
				status := "error"
				if res, err := src.Photo(ctx, owner, *size, ""); err == nil {
					status = fmt.Sprint(res.Status)
				}
				mu.Lock()
				statuses[status]++
				mu.Unlock()
			}
		})
	}
	for _, p := range people {
		next <- p
	}
	close(next)
	wg.Wait()
	secs := time.Since(start).Seconds()
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{
		"people": len(people), "seconds": secs, "per_second": float64(len(people)) / secs, "statuses": statuses,
	})
}
