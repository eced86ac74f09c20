package kafka_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/vigie-edu/vigie/connectors/kafka"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/internal/kafkatest"
)

// selfSigned returns a certificate for 127.0.0.1, its key, and the PEM
// file of the certificate (the authority a client must trust).
func selfSigned(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kfake"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, ca
}

// TestTLS: source and sink reach a TLS cluster with the authority of
// tls_ca_file, and refuse it without (the system's authorities do not
// know the test's certificate).
func TestTLS(t *testing.T) {
	ctx := testCtx(t)
	cert, ca := selfSigned(t)
	c := kafkatest.Start(t, kafkatest.Config{
		Topics: map[string]int32{"events": 1},
		Extra:  []kfake.Opt{kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})},
	})
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	rec, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(`[{"id": 7}]`))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	sinkWrite(ctx, t, map[string]any{"brokers": brokerList(c), "topic": "events", "tls_ca_file": ca}, "p", "s", mem, rec)
	if rows := sourceReadAll(ctx, t, map[string]any{"brokers": brokerList(c), "topics": []any{"events"}, "columns": map[string]any{"id": "int64"}, "stop_at_end": true, "tls_ca_file": ca}, mem); strings.Join(rows, ",") != "7" {
		t.Errorf("read back %q, want 7", rows)
	}

	untrusted, err := kafka.Source{}.Spec().Check(map[string]any{"brokers": brokerList(c), "topics": []any{"events"}, "columns": map[string]any{"id": "int64"}, "stop_at_end": true, "tls": true})
	if err != nil {
		t.Fatal(err)
	}
	err = (kafka.Source{}).Read(ctx, protocol.Config{Options: untrusted, BatchRows: 10}, mem, &collector{})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("read a cluster whose certificate no trusted authority signed: %v, want a certificate error", err)
	}
}
