package main

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"photosync/oauth"
)

// keygenCmd runs `photosync keygen`: it writes a self-signed RSA-2048
// certificate and its key for S2S OAuth and prints a new realm and the
// config lines that use them. Exchange trusts the certificate through our
// metadata document, so it need not come from a CA.
func keygenCmd(args []string, stdout, stderr io.Writer) error {
	fl := newFlags("keygen", stderr)
	certFile := fl.String("cert", "", "where to write the certificate (PEM), a `FILE`")
	keyFile := fl.String("key", "", "where to write the private key (PEM, PKCS#8, mode 0600), a `FILE`")
	days := fl.Int("days", 730, "`N` days the certificate is valid")
	name := fl.String("name", "photosync", "the certificate's common name, `CN`")
	force := fl.Bool("force", false, "overwrite existing files")
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	switch {
	case *certFile == "" || *keyFile == "":
		fmt.Fprintln(stderr, "photosync keygen: --cert FILE and --key FILE are required")
		return errUsage
	case filepath.Clean(*certFile) == filepath.Clean(*keyFile):
		fmt.Fprintln(stderr, "photosync keygen: --cert and --key must be different files")
		return errUsage
	case *days < 1:
		fmt.Fprintln(stderr, "photosync keygen: --days must be at least 1")
		return errUsage
	}
	g, err := keygen(*certFile, *keyFile, *name, time.Duration(*days)*24*time.Hour, *force)
	if err != nil {
		return err
	}
	writeKeygen(stdout, g)
	return nil
}

// generated is what keygen wrote.
type generated struct {
	certFile, keyFile string // absolute
	cert              *x509.Certificate
	realm             string
}

// keygen writes a new pair to certFile and keyFile. Unless force, it
// refuses when either exists, before writing anything.
func keygen(certFile, keyFile, commonName string, validFor time.Duration, force bool) (generated, error) {
	var g generated
	var err error
	if g.certFile, err = filepath.Abs(certFile); err != nil {
		return g, err
	}
	if g.keyFile, err = filepath.Abs(keyFile); err != nil {
		return g, err
	}
	if !force {
		for _, f := range []string{g.certFile, g.keyFile} {
			if _, err := os.Lstat(f); err == nil {
				return g, fmt.Errorf("keygen: %s exists; move it away or pass --force", f)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return g, fmt.Errorf("keygen: %w", err)
			}
		}
	}
	certPEM, keyPEM, err := oauth.GenerateKeyPair(commonName, validFor)
	if err != nil {
		return g, err
	}
	b, _ := pem.Decode(certPEM)
	if g.cert, err = x509.ParseCertificate(b.Bytes); err != nil {
		return g, fmt.Errorf("keygen: %w", err)
	}
	// The key first: a certificate without its key is useless, a key
	// without its certificate is merely left over.
	if err := writeSecret(g.keyFile, keyPEM, 0o600, force); err != nil {
		return g, err
	}
	if err := writeSecret(g.certFile, certPEM, 0o644, force); err != nil {
		return g, err
	}
	g.realm = oauth.NewRealm()
	return g, nil
}

// writeSecret writes b to file with mode perm, which it has even when an
// existing file (force) had another mode or the umask is loose.
func writeSecret(file string, b []byte, perm os.FileMode, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(file, flags, perm)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("keygen: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("keygen: writing %s: %w", file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keygen: writing %s: %w", file, err)
	}
	return nil
}

// writeKeygen prints what keygen wrote and the config lines that use it.
func writeKeygen(w io.Writer, g generated) {
	fmt.Fprintf(w, "wrote %s: certificate CN=%s, valid until %s, x5t %s\n",
		g.certFile, g.cert.Subject.CommonName, g.cert.NotAfter.UTC().Format(time.DateOnly), oauth.Thumbprint(g.cert))
	fmt.Fprintf(w, "wrote %s: its RSA %d private key, mode 0600; keep it there, readable by photosync only\n",
		g.keyFile, g.cert.PublicKey.(*rsa.PublicKey).N.BitLen())
	fmt.Fprintf(w, "\nPut these lines in photosync.yaml (a new realm: keep it; Exchange knows photosync by it):\n")
	fmt.Fprintf(w, "s2s:\n  certificate: %s\n  key: %s\n  realm: %s\n", g.certFile, g.keyFile, g.realm)
	fmt.Fprintf(w, "\nThen: photosync config check FILE, start photosync, and photosync trust --config FILE\n")
	fmt.Fprintf(w, "prints the Exchange commands. To rotate, keep the old pair and add the new one under\ns2s.certificates instead, with the same realm.\n")
}
