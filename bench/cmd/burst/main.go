// Command burst sends a bounded number of GET requests for bench/run and
// prints one JSON line: how many, by status, how long, and latency quantiles.
//
// Request i goes to base i mod len(bases), for person first+(i mod people),
// size i div people mod len(sizes) … in the order person-major when
// -person-major is set (all sizes of one person next to each other). With
// -concurrency 0 every request is started at once, behind one barrier (a
// stampede); otherwise that many workers take requests in order.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

func main() {
	bases := flag.String("bases", "", "comma-separated base URLs, e.g. http://127.0.0.1:8080")
	path := flag.String("path", "/photos/person%06d@contoso.com?size=%s", "path format: person number, size")
	n := flag.Int("n", 0, "requests")
	first := flag.Int("first", 0, "first person number")
	people := flag.Int("people", 1, "distinct people")
	sizes := flag.String("sizes", "HR96x96", "comma-separated sizes")
	personMajor := flag.Bool("person-major", false, "all sizes of a person next to each other")
	concurrency := flag.Int("concurrency", 0, "workers; 0: all requests at once")
	flag.Parse()
	if *bases == "" || *n <= 0 || *people <= 0 {
		log.Fatal("need -bases and positive -n and -people")
	}
	bs := strings.Split(*bases, ",")
	ss := strings.Split(*sizes, ",")
	url := func(i int) string {
		person, size := i%*people, (i / *people)%len(ss)
		if *personMajor {
			person, size = (i/len(ss))%*people, i%len(ss)
		}
		return bs[i%len(bs)] + fmt.Sprintf(*path, *first+person, ss[size])
	}

	client := &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: max(*concurrency, 64), MaxConnsPerHost: 0},
	}
	var mu sync.Mutex
	statuses := map[string]int{}
	lat := make([]time.Duration, 0, *n)
	do := func(i int) {
		t0 := time.Now()
		status := "error"
		resp, err := client.Get(url(i))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			status = fmt.Sprint(resp.StatusCode)
		}
		d := time.Since(t0)
		mu.Lock()
		statuses[status]++
		lat = append(lat, d)
		mu.Unlock()
	}

	start := time.Now()
	var wg sync.WaitGroup
	if *concurrency <= 0 {
		gate := make(chan struct{})
		for i := 0; i < *n; i++ {
			wg.Go(func() { <-gate; do(i) })
		}
		start = time.Now()
		close(gate)
	} else {
		next := make(chan int)
		for w := 0; w < *concurrency; w++ {
			wg.Go(func() {
				for i := range next {
					do(i)
				}
			})
		}
		for i := 0; i < *n; i++ {
			next <- i
		}
		close(next)
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{
		"requests": *n, "statuses": statuses, "seconds": elapsed.Seconds(),
		"p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": q(1),
	})
}
