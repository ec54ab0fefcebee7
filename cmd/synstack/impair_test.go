package main

import (
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/synstack/synstack/link/sim"
)

func TestParseImpair(t *testing.T) {
	c, err := parseImpair(io.Discard, strings.Fields("--a x --b y --delay 10ms --loss 1% --loss-ba 0.05 --rate-ab 100mbit --jitter-ba 2ms --seed 9 --duplicate 0.5%"))
	if err != nil {
		t.Fatal(err)
	}
	wantAB := sim.Options{Seed: 9, MTU: 1500, Delay: 10 * time.Millisecond, Loss: 0.01, Duplicate: 0.005, Bandwidth: 100_000_000, QueueLen: 1000}
	wantBA := sim.Options{Seed: 9, MTU: 1500, Delay: 10 * time.Millisecond, Loss: 0.05, Duplicate: 0.005, Jitter: 2 * time.Millisecond}
	if c.a != "x" || c.b != "y" || !reflect.DeepEqual(c.ab, wantAB) || !reflect.DeepEqual(c.ba, wantBA) {
		t.Fatalf("got %s %s\n ab %+v\n ba %+v\nwant\n ab %+v\n ba %+v", c.a, c.b, c.ab, c.ba, wantAB, wantBA)
	}
	if got := describe(c.ab); got != "delay 10ms, loss 1%, duplicate 0.5%, rate 100 mbit/s, queue 1000" {
		t.Errorf("describe: %q", got)
	}
	for _, bad := range []string{
		"--a x", "--a x --b x", "--a x --b y extra",
		"--a x --b y --loss 101%", "--a x --b y --loss -1", "--a x --b y --loss NaN", "--a x --b y --reorder-ab 2",
		"--a x --b y --delay -1ms", "--a x --b y --delay 10", "--a x --b y --rate 10furlongs", "--a x --b y --rate -5mbit",
		"--a x --b y --queue 0",
	} {
		if _, err := parseImpair(io.Discard, strings.Fields(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{"100mbit": 100e6, "1gbit": 1e9, "1.5Mbit": 1.5e6, "500kbit": 500e3, "10mbps": 80e6, "64000": 64000, "0": 0} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}
