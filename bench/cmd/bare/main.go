// Command bare is bench/run's reference for the hit path: a plain net/http
// handler that answers every request with the same bytes and the same
// response headers photosync sent for one photo, as fast as Go can without
// photosync's engine, routing, identity or logging in the way.
//
// -headers is a header dump as curl -D writes it (photosync's answer). Every
// field is sent as it stands there, set by direct assignment of a prepared
// slice, except Date (net/http writes its own) and X-Request-Id, which must
// be unique per request: it is a fixed prefix and a counter, as photosync's
// own ids are.
//
// It runs on an http.Server with serve's timeouts (httpServer in cmd/photosync/serve.go),
// because they cost net/http work on every request: a read deadline for
// the whole request and a write deadline, each a timer reset and a clock
// read, where a server without them clears the deadlines instead. Without
// them bare would measure a server photosync must not be.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"log"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	bodyFile := flag.String("body", "", "the photo's bytes")
	headerFile := flag.String("headers", "", "photosync's response headers, as curl -D writes them")
	addrFile := flag.String("addr-file", "", "write the address served on to this file")
	flag.Parse()
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		log.Fatal(err)
	}
	dump, err := os.ReadFile(*headerFile)
	if err != nil {
		log.Fatal(err)
	}
	fixed, err := parseHeaders(dump)
	if err != nil {
		log.Fatal(err)
	}
	fixed["Content-Length"] = []string{strconv.Itoa(len(body))}

	var seq atomic.Uint64
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		for k, v := range fixed {
			hdr[k] = v
		}
		b := make([]byte, 0, 24)
		b = append(b, "bare0000-"...)
		hdr["X-Request-Id"] = []string{string(strconv.AppendUint(b, seq.Add(1), 36))}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(ln.Addr().String()), 0o600); err != nil {
			log.Fatal(err)
		}
	}
	srv := &http.Server{
		Handler: handler,
		// serve's. Its write timeout is photos.pull_timeout + 30s, and
		// bench/run leaves pull_timeout at its default, 30s; the figure
		// does not change what a request costs, only that one is set.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
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

// parseHeaders reads a curl -D dump (a status line, then fields) into
// canonical keys, leaving out the fields the handler writes per request.
func parseHeaders(dump []byte) (http.Header, error) {
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(dump)))
	if _, err := r.ReadLine(); err != nil { // HTTP/1.1 200 OK
		return nil, err
	}
	mime, err := r.ReadMIMEHeader()
	if err != nil && len(mime) == 0 {
		return nil, err
	}
	h := http.Header(mime)
	for _, k := range []string{"Date", "X-Request-Id", "Content-Length", "Connection"} {
		delete(h, k)
	}
	for k, v := range h {
		if strings.TrimSpace(k) == "" || len(v) == 0 {
			delete(h, k)
		}
	}
	return h, nil
}
