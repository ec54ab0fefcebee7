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

// TCP Fast Open: the first dial asks the server for a cookie; the second
// carries its request in the SYN, and the server reads it before the
// handshake is over.
func ExampleDialer_fastOpen() {
	a, b := pipe.New(1500)
	srv, err := synstack.New(synstack.Config{Link: a, FastOpen: synstack.FastOpenServer,
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	cli, err := synstack.New(synstack.Config{Link: b, // FastOpenClient is the default
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()

	ctx := context.Background()
	lc := synstack.ListenConfig{Stack: srv, FastOpen: 16}
	ln, err := lc.Listen(ctx, "tcp", "10.0.0.1:7")
	if err != nil {
		log.Fatal(err)
	}
	go func() { // an echo server
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()

	d := synstack.Dialer{Stack: cli, FastOpenData: []byte("ping")}
	for i := 0; i < 2; i++ {
		c, err := d.DialContext(ctx, "tcp", "10.0.0.1:7")
		if err != nil {
			log.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			log.Fatal(err)
		}
		var synData bool
		c.(*synstack.TCPConn).Control(func(s *synstack.Sockets, fd int) {
			info, _ := s.GetsockoptTCPInfo(fd)
			synData = info.Options&synstack.TCPI_OPT_SYN_DATA != 0
		})
		fmt.Printf("%s, data in the SYN: %v\n", buf, synData)
		c.Close()
	}
	st := srv.Stats()
	fmt.Println("cookies asked:", st.TcpExtTCPFastOpenCookieReqd, "SYNs with data taken:", st.TcpExtTCPFastOpenPassive)
	// Output:
	// ping, data in the SYN: false
	// ping, data in the SYN: true
	// cookies asked: 1 SYNs with data taken: 1
}
