package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	stdsync "sync"
	"time"

	"photosync/configs"
	"photosync/store"
	psync "photosync/sync"
	"photosync/sync/photo"
)

// errFailed makes a command exit 1 after it has said why itself.
var errFailed = errors.New("some photos failed")

func warmCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("warm", stderr)
	path := fs.String("config", "", "the admin config file (YAML)")
	from := fs.String("from", "-", "file of email addresses, one a line (- for stdin)")
	concurrency := fs.Int("concurrency", 4, "pulls in flight at once")
	sizes := fs.String("sizes", strings.Join(photo.Sizes, ","), "comma-separated sizes to pull")
	force := fs.Bool("force", false, "pull photos whose timer still runs")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the warm to this file (go tool pprof)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		fmt.Fprintln(stderr, "photosync warm: --config FILE is required")
		return errUsage
	}
	if *concurrency < 1 || *concurrency > 256 {
		fmt.Fprintln(stderr, "photosync warm: --concurrency must be between 1 and 256")
		return errUsage
	}
	sizeList, err := parseSizes(*sizes)
	if err != nil {
		fmt.Fprintf(stderr, "photosync warm: --sizes: %v\n", err)
		return errUsage
	}
	in := stdin
	if *from != "-" {
		f, err := os.Open(*from)
		if err != nil {
			return fmt.Errorf("reading the list: %w", err)
		}
		defer f.Close()
		in = f
	}
	owners, err := readEmails(in)
	if err != nil {
		return fmt.Errorf("reading the list: %w", err)
	}

	cfg, err := configs.Load(*path)
	if err != nil {
		return err
	}
	p := newProgress(stderr)
	a, err := buildQuiet(ctx, cfg, p.logs()) // log lines go above the bar
	if err != nil {
		return err
	}
	defer a.Close()

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	counts, err := a.engine.Warm(ctx, owners, psync.WarmOptions{
		Sizes: sizeList, Concurrency: *concurrency, Force: *force, Progress: p.update,
	})
	p.finish()
	fmt.Fprintf(stdout, "warmed %d people × %d sizes: pulled %d, not modified %d, no photo %d, failed %d, skipped %d\n",
		len(owners), len(sizeList), counts.Pulled, counts.NotModified, counts.NoPhoto, counts.Failed, counts.Skipped)
	if err != nil {
		return fmt.Errorf("warming: %w", err)
	}
	if counts.Failed > 0 {
		return errFailed
	}
	return nil
}

// buildQuiet wires photosync for an operator command: logs go to stderr at
// warn and above (one line per pull would drown the progress), unless the
// config asks for less.
func buildQuiet(ctx context.Context, cfg configs.Config, stderr io.Writer) (*app, error) {
	if cfg.Log.Level == "debug" || cfg.Log.Level == "info" {
		cfg.Log.Level = "warn"
	}
	a, err := build(ctx, cfg, newLogger(cfg.Log, stderr), nil)
	if err != nil && errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("%w\n(a running serve holds the embedded store: use its admin API, stop it, or share the store through store.redis_url)", err)
	}
	return a, err
}

// parseSizes reads "HR48x48,hr96x96" into canonical size codes.
func parseSizes(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		size, ok := photo.CanonicalSize(f)
		if !ok {
			return nil, fmt.Errorf("unknown size %q (want one of %s)", f, strings.Join(photo.Sizes, " "))
		}
		out = append(out, size)
	}
	if len(out) == 0 {
		return nil, errors.New("no size given")
	}
	return out, nil
}

// readEmails reads one address a line; blank lines and lines starting with
// # are skipped. Every bad line is reported, by number, at once.
func readEmails(r io.Reader) ([]string, error) {
	var (
		out  []string
		errs []error
		seen = map[string]bool{}
	)
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		email, err := photo.NormalizeEmail(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %q: %w", n, line, err))
			continue
		}
		if !seen[email] {
			seen[email] = true
			out = append(out, email)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, errors.Join(errs...)
}

// progress shows a warm's progress: on a terminal, a bar with the rate and
// the time left, redrawn in place on a line it owns (log lines are written
// above it); otherwise a plain line every tenth of the way.
type progress struct {
	mu    stdsync.Mutex
	w     io.Writer
	line  *statusLine // the terminal's last line; nil when not a terminal
	start time.Time
	drawn time.Time
	step  int
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.line = &statusLine{w: w}
		}
	}
	return p
}

// logs is the writer for the logger while the progress shows.
func (p *progress) logs() io.Writer {
	if p.line != nil {
		return p.line
	}
	return p.w
}

func (p *progress) update(c psync.WarmCounts) {
	p.mu.Lock()
	defer p.mu.Unlock()
	elapsed := time.Since(p.start)
	if p.line != nil {
		if time.Since(p.drawn) < 100*time.Millisecond && c.Done() < c.Total {
			return
		}
		p.drawn = time.Now()
		p.line.Set(progressText(c.Done(), c.Total, c.Failed, elapsed, true))
		return
	}
	if p.step == 0 {
		p.step = max(1, c.Total/10)
	}
	if c.Done()%p.step == 0 || c.Done() == c.Total {
		fmt.Fprintln(p.w, progressText(c.Done(), c.Total, c.Failed, elapsed, false))
	}
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.line != nil {
		p.line.Done()
	}
}
