package pgtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// makeCerts writes a certificate authority (CAFile, outside the data
// folder) and a server certificate and key signed by it, for 127.0.0.1 and
// localhost, readable by the server's user only, makes TCP connections
// require TLS (hostssl in pg_hba.conf), and returns the server settings
// that use the certificate.
func (s *Server) makeCerts() ([]string, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vigie test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	s.CAFile = filepath.Join(s.Dir, "ca.pem")
	crt, keyFile := filepath.Join(s.data, "server.crt"), filepath.Join(s.data, "server.key")
	files := []struct {
		path, kind string
		der        []byte
	}{{s.CAFile, "CERTIFICATE", caDER}, {crt, "CERTIFICATE", der}, {keyFile, "EC PRIVATE KEY", keyDER}}
	for _, f := range files {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.kind, Bytes: f.der}), 0o600); err != nil {
			return nil, err
		}
		if s.cred != nil && f.path != s.CAFile {
			if err := os.Chown(f.path, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
				return nil, err
			}
		}
	}
	// TLS only on TCP: plain connections over loopback are refused.
	hba := filepath.Join(s.data, "pg_hba.conf")
	b, err := os.ReadFile(hba)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "host ") {
			line = "hostssl " + strings.TrimPrefix(line, "host ")
		}
		out = append(out, line)
	}
	if err := os.WriteFile(hba, []byte(strings.Join(out, "\n")), 0o600); err != nil {
		return nil, err
	}
	return []string{"ssl=on", "ssl_cert_file=" + crt, "ssl_key_file=" + keyFile}, nil
}
