package synstack_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/netip"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/link/pipe"
)

// TCP MD5 signatures (RFC 2385), as BGP speakers use them: the listener
// has a key for its peer's address, the dialer the same key; every
// segment of the connection is signed, and a dialer with another key
// would not get through.
func ExampleDialer_md5() {
	a, b := pipe.New(1500)
	srv, err := synstack.New(synstack.Config{Link: a,
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	cli, err := synstack.New(synstack.Config{Link: b,
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()

	ctx := context.Background()
	lc := synstack.ListenConfig{Stack: srv, MD5Keys: map[netip.Prefix][]byte{
		netip.MustParsePrefix("10.0.0.0/24"): []byte("bgp-secret"),
	}}
	ln, err := lc.Listen(ctx, "tcp", "10.0.0.1:179")
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.WriteString(c, "OPEN")
		c.Close()
	}()

	d := synstack.Dialer{Stack: cli, MD5Key: []byte("bgp-secret")}
	c, err := d.DialContext(ctx, "tcp", "10.0.0.1:179")
	if err != nil {
		log.Fatal(err)
	}
	msg, _ := io.ReadAll(c)
	c.Close()
	fmt.Printf("%s, refused: %d\n", msg, srv.Stats().TcpExtTCPMD5Failure)
	// Output: OPEN, refused: 0
}
