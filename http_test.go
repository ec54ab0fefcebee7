package synstack_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synstack/synstack"
)

// testCert returns a self-signed certificate for 10.0.0.1, 10.0.0.2,
// fd00::1 and fd00::2, and a pool that trusts it.
func testCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "synstack test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true,
		IPAddresses: []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("10.0.0.2"),
			net.ParseIP("fd00::1"), net.ParseIP("fd00::2")},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestHTTP runs net/http's server on one stack and its client on the
// other, both ways round, with and without keep-alive, plain and over
// TLS: small requests, then a large upload echoed back and hashed.
func TestHTTP(t *testing.T) {
	cert, pool := testCert(t)
	for _, dir := range []string{"a-serves", "b-serves"} {
		for _, keepAlive := range []bool{true, false} {
			for _, useTLS := range []bool{false, true} {
				name := fmt.Sprintf("%s/keepalive=%v/tls=%v", dir, keepAlive, useTLS)
				t.Run(name, func(t *testing.T) {
					a, b := stackPair(t, 1500, nil)
					srvStack, cliStack, host := a, b, "10.0.0.1"
					if dir == "b-serves" {
						srvStack, cliStack, host = b, a, "[fd00::2]"
					}
					testHTTP(t, srvStack, cliStack, host, keepAlive, useTLS, cert, pool)
				})
			}
		}
	}
}

func testHTTP(t *testing.T, srvStack, cliStack *synstack.Stack, host string, keepAlive, useTLS bool, cert tls.Certificate, pool *x509.CertPool) {
	ln, err := srvStack.Listen("tcp", ":443")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Query().Get("i"))
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		sum, n, err := hashRead(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d %x", n, sum)
	})
	mux.HandleFunc("/download", func(w http.ResponseWriter, r *http.Request) {
		var n int64
		fmt.Sscan(r.URL.Query().Get("n"), &n)
		hashCopy(w, 8, n)
	})
	server := &http.Server{Handler: mux}
	served := make(chan error, 1)
	scheme := "http"
	if useTLS {
		scheme = "https"
		server.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		go func() { served <- server.ServeTLS(ln, "", "") }()
	} else {
		go func() { served <- server.Serve(ln) }()
	}
	defer func() {
		server.Close()
		if err := <-served; err != http.ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
	}()

	var dials atomic.Int32
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return cliStack.DialContext(ctx, network, addr)
		},
		DisableKeepAlives: !keepAlive,
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: false,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	base := scheme + "://" + host + ":443"

	const requests = 20
	for i := range requests {
		resp, err := client.Get(fmt.Sprintf("%s/hello?i=%d", base, i))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != fmt.Sprintf("hello %d", i) {
			t.Fatalf("request %d: %q, %v", i, body, err)
		}
	}
	wantDials := int32(1)
	if !keepAlive {
		wantDials = requests
	}
	if got := dials.Load(); got != wantDials {
		t.Errorf("%d dials for %d requests, want %d", got, requests, wantDials)
	}

	// A large upload and a large download, hashed.
	n := bulkSize(t) / 4
	var upload [32]byte
	pr, pw := io.Pipe()
	go func() {
		var err error
		upload, err = hashCopy(pw, 7, n)
		pw.CloseWithError(err)
	}()
	resp, err := client.Post(base+"/upload", "application/octet-stream", pr)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%d %x", n, upload); err != nil || string(body) != want {
		t.Fatalf("upload: server saw %q, %v; want %q", body, err, want)
	}
	resp, err = client.Get(fmt.Sprintf("%s/download?n=%d", base, n))
	if err != nil {
		t.Fatal(err)
	}
	sum, k, err := hashRead(resp.Body)
	resp.Body.Close()
	want, _ := hashCopy(io.Discard, 8, n)
	if err != nil || k != n || sum != want {
		t.Fatalf("download: %d bytes of %d, %v, hash match %v", k, n, err, sum == want)
	}
}

// TestTLSBulk runs crypto/tls over synstack connections, the TLS server on
// either stack, and moves bulk data each way through it, hashed.
func TestTLSBulk(t *testing.T) {
	cert, pool := testCert(t)
	for _, dir := range []string{"a-serves", "b-serves"} {
		t.Run(dir, func(t *testing.T) {
			a, b := stackPair(t, 1500, nil)
			srvStack, cliStack, addr := a, b, "10.0.0.1:443"
			if dir == "b-serves" {
				srvStack, cliStack, addr = b, a, "[fd00::2]:443"
			}
			c1, c2 := connPair(t, srvStack, cliStack, "tcp", addr)
			tc := tls.Client(c1, &tls.Config{RootCAs: pool, ServerName: c2.LocalAddr().(*net.TCPAddr).IP.String()})
			ts := tls.Server(c2, &tls.Config{Certificates: []tls.Certificate{cert}})
			defer tc.Close()
			defer ts.Close()
			errc := make(chan error, 1)
			go func() { errc <- ts.Handshake() }()
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			bulk(t, tc, ts, bulkSize(t)/4)
		})
	}
}
