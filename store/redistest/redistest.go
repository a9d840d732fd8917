// Package redistest starts real Redis servers for the store tests: one
// redis-server, a TLS one that asks for client certificates, a Sentinel
// group (one master, one replica, three sentinels) and a three-master
// Cluster. Each listens on 127.0.0.1 at a free port, keeps its files in a
// folder of its own under t.TempDir(), and is stopped when the test ends.
//
// Without redis-server the tests skip, or fail when PHOTOSYNC_REQUIRE_REDIS
// is set (as .ci/test does), so CI never skips Redis silently.
package redistest

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"photosync/internal/testpki"
)

// startBound bounds how long a server may take to answer after its start.
const startBound = 20 * time.Second

// Server is one running redis-server (or redis-sentinel).
type Server struct {
	Addr string // 127.0.0.1:port
	Dir  string // its own folder: config, log, dump.rdb
	mu   sync.Mutex
	cmd  *exec.Cmd
	args []string // to start it again
}

// Port returns the server's port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// URL returns redis://Addr/0.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Client returns a plain go-redis client on the server, closed when the
// test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// Restart starts a killed server again, on the same port and folder, and
// waits until it listens.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	err := s.cmd.Start()
	s.mu.Unlock()
	if err != nil {
		t.Fatalf("restarting %s: %v", s.args[0], err)
	}
	waitFor(t, "the restarted server to listen", func() bool {
		c, err := net.Dial("tcp", s.Addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// Log returns the server's log, for a failing test's message.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	return string(b)
}

// binary finds a Redis program, skipping (or failing) the test without it.
func binary(t testing.TB, name string) string {
	t.Helper()
	for _, p := range []string{name, "/usr/sbin/" + name, "/usr/bin/" + name} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("PHOTOSYNC_REQUIRE_REDIS") != "" {
		t.Fatalf("PHOTOSYNC_REQUIRE_REDIS is set but %s is not installed (apt-get install redis-server redis-sentinel)", name)
	}
	t.Skipf("%s not installed; run .ci/test", name)
	return ""
}

// FreePort returns a loopback port that is free now, and whose Cluster bus
// port (port+10000) is free too, both below the kernel's ephemeral range
// (32768 and up on Linux). A server killed by a test leaves its port with
// clients dialling it; an ephemeral port can then be taken by one of those
// very dials, which connects to itself (TCP's simultaneous open) and reads
// its own PING back as a Redis that came back, or keep a restarted server
// from binding. Ports from 10000 to 22767, and their bus ports up to 32767,
// are never handed out as ephemeral ones.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 200 {
		p := 10000 + mrand.IntN(12768)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		bus, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+10000))
		if err != nil {
			continue
		}
		bus.Close()
		return p
	}
	t.Fatal("no free loopback port below the ephemeral range")
	return 0
}

// Start runs redis-server with the given extra config lines (such as
// "maxmemory 20mb") and waits until it answers PING.
func Start(t testing.TB, config ...string) *Server {
	t.Helper()
	return start(t, binary(t, "redis-server"), true, config...)
}

func start(t testing.TB, bin string, ping bool, config ...string) *Server {
	t.Helper()
	dir := t.TempDir()
	port := FreePort(t)
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir}
	// A config naming "tls-port" gets the port for TLS and no plain TCP.
	plain := fmt.Sprintf("port %d", port)
	for i, l := range config {
		if l == "tls-port" {
			config[i] = fmt.Sprintf("tls-port %d", port)
			plain, ping = "port 0", false
		}
	}
	lines := append([]string{
		"bind 127.0.0.1",
		plain,
		"dir " + dir,
		"logfile " + filepath.Join(dir, "redis.log"),
		`save ""`,
		"appendonly no",
		"protected-mode no",
	}, config...)
	conf := filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{conf}
	if filepath.Base(bin) == "redis-sentinel" {
		args = []string{conf, "--sentinel"}
	}
	s.args = append([]string{bin}, args...)
	s.cmd = exec.Command(bin, args...)
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(s.Kill)
	if !ping {
		waitFor(t, bin+" to listen", func() bool {
			c, err := net.Dial("tcp", s.Addr)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
		return s
	}
	c := s.Client(t)
	deadline := time.Now().Add(startBound)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("%s on %s did not answer in %v:\n%s", bin, s.Addr, startBound, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// TLS is a redis-server that speaks TLS only and asks for a client
// certificate (tls-auth-clients yes, Redis' default), with the files a
// client needs.
type TLS struct {
	*Server
	CAFile           string // the CA of the server's certificate
	Certificate, Key string // a client certificate the server accepts
}

// URL returns rediss://127.0.0.1:port/0.
func (s *TLS) URL() string { return "rediss://" + s.Addr + "/0" }

// StartTLS runs a TLS redis-server with a throwaway CA for its certificate
// and another for its clients'.
func StartTLS(t testing.TB) *TLS {
	t.Helper()
	bin := binary(t, "redis-server")
	pki, err := testpki.New("redistest server CA")
	if err != nil {
		t.Fatal(err)
	}
	files := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(files, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	clientCA, clientCert, clientKey := clientPKI(t)
	s := &TLS{
		CAFile:      write("ca.pem", pki.CAPEM),
		Certificate: write("client.pem", clientCert),
		Key:         write("client-key.pem", clientKey),
	}
	s.Server = start(t, bin, false,
		"tls-port",
		"tls-cert-file "+write("server.pem", pki.LeafPEM),
		"tls-key-file "+write("server-key.pem", pki.KeyPEM),
		"tls-ca-cert-file "+write("client-ca.pem", clientCA),
		"tls-auth-clients yes",
	)
	return s
}

// clientPKI makes a CA and a client certificate it signed, as PEM.
func clientPKI(t testing.TB) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: testpki.Serial(), Subject: pkix.Name{CommonName: "redistest client CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "photosync"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kDER})
}

// Sentinel is a Sentinel group: a master, its replica and three
// sentinels watching it as MasterName.
type Sentinel struct {
	MasterName string
	Master     *Server // at the start; after Failover, Replica is the master
	Replica    *Server
	Sentinels  []*Server
}

// URL returns the Sentinel URL of the group, in go-redis' form.
func (g *Sentinel) URL() string {
	u := "redis://" + g.Sentinels[0].Addr + "/0?master_name=" + g.MasterName
	for _, s := range g.Sentinels[1:] {
		u += "&addr=" + s.Addr
	}
	return u
}

// StartSentinel starts a Sentinel group and waits until every sentinel
// knows the master and its replica.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	sbin := binary(t, "redis-sentinel")
	g := &Sentinel{MasterName: "photosync"}
	g.Master = Start(t)
	g.Replica = Start(t, "replicaof 127.0.0.1 "+strconv.Itoa(g.Master.Port()))
	waitFor(t, "the replica to sync", func() bool {
		info, _ := g.Replica.Client(t).Info(context.Background(), "replication").Result()
		return strings.Contains(info, "master_link_status:up")
	})
	for range 3 {
		s := start(t, sbin, true,
			fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2", g.MasterName, g.Master.Port()),
			"sentinel down-after-milliseconds "+g.MasterName+" 1000",
			"sentinel failover-timeout "+g.MasterName+" 5000",
			"sentinel parallel-syncs "+g.MasterName+" 1",
		)
		g.Sentinels = append(g.Sentinels, s)
	}
	for _, s := range g.Sentinels {
		c := s.Client(t)
		waitFor(t, "the sentinels to see the replica and each other", func() bool {
			m, err := c.Do(context.Background(), "SENTINEL", "MASTER", g.MasterName).Result()
			if err != nil {
				return false
			}
			f := fields(m)
			return f["num-slaves"] == "1" && f["num-other-sentinels"] == "2"
		})
	}
	return g
}

// Failover runs SENTINEL FAILOVER and waits until every sentinel names the
// replica as the master and the old master follows it.
func (g *Sentinel) Failover(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	if err := g.Sentinels[0].Client(t).Do(ctx, "SENTINEL", "FAILOVER", g.MasterName).Err(); err != nil {
		t.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	for _, s := range g.Sentinels {
		c := s.Client(t)
		waitFor(t, "the sentinels to name the new master", func() bool {
			a, err := c.Do(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", g.MasterName).StringSlice()
			return err == nil && len(a) == 2 && a[1] == strconv.Itoa(g.Replica.Port())
		})
	}
	old := g.Master.Client(t)
	waitFor(t, "the old master to follow the new one", func() bool {
		info, _ := old.Info(ctx, "replication").Result()
		return strings.Contains(info, "role:slave") && strings.Contains(info, "master_link_status:up")
	})
	g.Master, g.Replica = g.Replica, g.Master
}

// fields turns a Redis flat list or map reply into a map.
func fields(v any) map[string]string {
	out := map[string]string{}
	switch x := v.(type) {
	case []any:
		for i := 0; i+1 < len(x); i += 2 {
			out[fmt.Sprint(x[i])] = fmt.Sprint(x[i+1])
		}
	case map[any]any:
		for k, v := range x {
			out[fmt.Sprint(k)] = fmt.Sprint(v)
		}
	}
	return out
}

// Cluster is a three-master Redis Cluster without replicas.
type Cluster struct {
	Nodes []*Server
}

// URL returns the Cluster URL: the first node, the others as addr=.
func (c *Cluster) URL() string {
	u := "redis://" + c.Nodes[0].Addr + "?addr=" + c.Nodes[1].Addr
	return u + "&addr=" + c.Nodes[2].Addr
}

// StartCluster starts three cluster-enabled redis-servers, joins them with
// redis-cli --cluster create and waits until every node says cluster_state:ok.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	cli := binary(t, "redis-cli")
	c := &Cluster{}
	args := []string{"--cluster", "create"}
	for range 3 {
		s := Start(t, "cluster-enabled yes", "cluster-node-timeout 2000", "cluster-config-file nodes.conf")
		c.Nodes = append(c.Nodes, s)
		args = append(args, s.Addr)
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range c.Nodes {
		cl := n.Client(t)
		waitFor(t, "the cluster to be ok", func() bool {
			info, err := cl.ClusterInfo(context.Background()).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
	}
	return c
}

// waitFor polls cond every 20ms for startBound, failing the test after.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(startBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Info returns one field of INFO from s, for tests that look at a server.
func Info(t testing.TB, s *Server, section, field string) string {
	t.Helper()
	info, err := s.Client(t).Info(context.Background(), section).Result()
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), field+":"); ok {
			return v
		}
	}
	return ""
}
