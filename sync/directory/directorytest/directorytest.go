// Package directorytest starts a real OpenLDAP server (Debian's slapd) on a
// loopback port for tests, with a throwaway configuration and database
// under the test's temporary directory. Its schema is core, cosine and
// inetOrgPerson (which carries jpegPhoto) plus an auxiliary class,
// photosyncPerson, that adds Active Directory's thumbnailPhoto and
// userPrincipalName.
//
// When slapd is not installed the test is skipped, or fails when
// PHOTOSYNC_REQUIRE_SLAPD is set (as .ci/test sets it after installing it).
package directorytest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"photosync/internal/testpki"
)

// Fixed names of the throwaway directory.
const (
	BaseDN   = "ou=people,dc=contoso,dc=com"
	BindDN   = "cn=photosync,dc=contoso,dc=com"
	Password = "service-secret"
	suffix   = "dc=contoso,dc=com"
	rootDN   = "cn=admin,dc=contoso,dc=com"
	rootPW   = "admin-secret"
)

// The OIDs use 1.3.6.1.4.1.32473, the enterprise number RFC 5612 reserves
// for documentation and examples; thumbnailPhoto keeps AD's name and syntax
// (octet string), not its OID, which is not ours to reuse here.
const extraSchema = `
attributetype ( 1.3.6.1.4.1.32473.1.1.1 NAME 'thumbnailPhoto'
	EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.32473.1.1.2 NAME 'userPrincipalName'
	EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.32473.1.2.1 NAME 'photosyncPerson' SUP top AUXILIARY
	MAY ( thumbnailPhoto $ userPrincipalName ) )
`

const confTemplate = `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include %[1]s/photosync.schema
pidfile %[1]s/slapd.pid
TLSCertificateFile %[1]s/server.crt
TLSCertificateKeyFile %[1]s/server.key
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 16777216
suffix "%[2]s"
rootdn "%[3]s"
rootpw %[4]s
directory %[1]s/db
access to attrs=userPassword by anonymous auth by * none
access to * by dn.exact="%[5]s" read by * none
`

// Server is a running slapd.
type Server struct {
	URL      string // ldap://127.0.0.1:port
	LDAPSURL string // ldaps://127.0.0.1:port, with a certificate from CAPEM
	CAPEM    []byte // the throwaway CA that signed the ldaps certificate
	t        testing.TB
}

// Person is one entry under BaseDN.
type Person struct {
	UID            string // the RDN value
	Mail           string
	UPN            string // userPrincipalName, optional
	DisplayName    string // optional
	ThumbnailPhoto []byte // optional
	JPEGPhoto      []byte // optional
}

// Start starts slapd for t and stops it when t ends. It adds the service
// account BindDN with Password, and the people container.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := "/usr/sbin/slapd"
	if p, err := exec.LookPath("slapd"); err == nil {
		bin = p
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("PHOTOSYNC_REQUIRE_SLAPD") != "" {
			t.Fatalf("slapd is required (PHOTOSYNC_REQUIRE_SLAPD) but not installed: %v", err)
		}
		t.Skip("slapd not installed (apt-get install slapd); .ci/test installs it")
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "photosync.schema"), []byte(extraSchema), 0o600); err != nil {
		t.Fatal(err)
	}
	caPEM := writeServerCert(t, dir)
	conf := fmt.Sprintf(confTemplate, dir, suffix, rootDN, rootPW, BindDN)
	confPath := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	url := "ldap://127.0.0.1:" + strconv.Itoa(freePort(t))
	ldapsURL := "ldaps://127.0.0.1:" + strconv.Itoa(freePort(t))
	var logs bytes.Buffer
	// -d 0 keeps slapd in the foreground, so the test owns the process.
	cmd := exec.Command(bin, "-f", confPath, "-h", url+"/ "+ldapsURL+"/", "-d", "0")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting slapd: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	s := &Server{URL: url, LDAPSURL: ldapsURL, CAPEM: caPEM, t: t}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := ldap.DialURL(url)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("slapd exited: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("slapd did not listen on %s: %v\n%s", url, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.add("dc=contoso,dc=com", map[string][]string{"objectClass": {"dcObject", "organization"}, "dc": {"contoso"}, "o": {"Contoso"}})
	s.add(BaseDN, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"people"}})
	s.add(BindDN, map[string][]string{"objectClass": {"person", "simpleSecurityObject"}, "cn": {"photosync"}, "sn": {"photosync"}, "userPassword": {Password}})
	return s
}

// AddPerson adds p under BaseDN.
func (s *Server) AddPerson(p Person) {
	s.t.Helper()
	attrs := map[string][]string{
		"objectClass": {"inetOrgPerson", "photosyncPerson"},
		"uid":         {p.UID}, "cn": {p.UID}, "sn": {p.UID}, "mail": {p.Mail},
	}
	if p.UPN != "" {
		attrs["userPrincipalName"] = []string{p.UPN}
	}
	if p.DisplayName != "" {
		attrs["displayName"] = []string{p.DisplayName}
	}
	if len(p.ThumbnailPhoto) > 0 {
		attrs["thumbnailPhoto"] = []string{string(p.ThumbnailPhoto)}
	}
	if len(p.JPEGPhoto) > 0 {
		attrs["jpegPhoto"] = []string{string(p.JPEGPhoto)}
	}
	s.add("uid="+ldap.EscapeDN(p.UID)+","+BaseDN, attrs)
}

func (s *Server) add(dn string, attrs map[string][]string) {
	s.t.Helper()
	c, err := ldap.DialURL(s.URL)
	if err != nil {
		s.t.Fatalf("directorytest: dial: %v", err)
	}
	defer c.Close()
	if err := c.Bind(rootDN, rootPW); err != nil {
		s.t.Fatalf("directorytest: bind: %v", err)
	}
	req := ldap.NewAddRequest(dn, nil)
	for name, vals := range attrs {
		req.Attribute(name, vals)
	}
	if err := c.Add(req); err != nil {
		s.t.Fatalf("directorytest: add %s: %v", dn, err)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// writeServerCert makes a throwaway CA and a certificate for 127.0.0.1
// signed by it, writes the certificate and key where slapd.conf names
// them, and returns the CA's PEM.
func writeServerCert(t testing.TB, dir string) []byte {
	t.Helper()
	p, err := testpki.New("directorytest CA")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"server.crt": p.LeafPEM, "server.key": p.KeyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p.CAPEM
}
