package sim_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/link/sim"
)

// Three stacks on one simulated network: a server, a client and a third
// stack. The client is cut off from the server, then the cut heals; the
// third stack reaches the server all along. Network.Add gives each stack
// its link; packets go to whichever node has their destination address.
func ExampleNetwork() {
	n := sim.NewNetwork(sim.Options{Seed: 1, Delay: time.Millisecond})
	stack := func(name, addr string) *synstack.Stack {
		a := netip.MustParseAddr(addr)
		st, err := synstack.New(synstack.Config{Link: n.Add(name, a), Addrs: []netip.Prefix{netip.PrefixFrom(a, 24)}})
		if err != nil {
			panic(err)
		}
		return st
	}
	srv, cli, third := stack("server", "10.0.0.1"), stack("client", "10.0.0.2"), stack("third", "10.0.0.3")
	defer srv.Close()
	defer cli.Close()
	defer third.Close()
	// A slower, lossier way from the client to the server.
	n.SetLink("client", "server", sim.Options{Delay: 20 * time.Millisecond, Loss: 0.01})

	ln, _ := srv.Listen("tcp", "10.0.0.1:80")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "hello from the server\n")
			c.Close()
		}
	}()
	defer ln.Close()
	get := func(st *synstack.Stack, timeout time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		c, err := st.DialContext(ctx, "tcp", "10.0.0.1:80")
		if err != nil {
			fmt.Println("dial:", errors.Is(err, context.DeadlineExceeded))
			return
		}
		defer c.Close()
		io.Copy(os.Stdout, c)
	}

	n.Partition(0, []string{"client"}, []string{"server"}) // until Heal
	get(third, 10*time.Second)
	get(cli, 200*time.Millisecond) // its SYN goes nowhere
	n.Heal([]string{"client"}, []string{"server"})
	get(cli, 10*time.Second)
	fmt.Println("client>server dropped by the partition:", n.LinkStats("client", "server").Dropped)
	// Output:
	// hello from the server
	// dial: true
	// hello from the server
	// client>server dropped by the partition: 1
}
