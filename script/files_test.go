package script

import (
	"strings"
	"testing"
)

// sendfileHead makes a connection (fd 4) and a scratch file of 300
// zeroes, open as fd 5.
const sendfileHead = "`dd if=/dev/zero of=/tmp/t.bin bs=100 count=3`\n" +
	"0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n" +
	"+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0\n" +
	"+0 bind(3, ..., ...) = 0\n" +
	"+0 listen(3, 1) = 0\n" +
	"+0 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>\n" +
	"+0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>\n" +
	"+0 < . 1:1(0) ack 1 win 257\n" +
	"+0 accept(3, ..., ...) = 4\n" +
	"+0 open(\"/tmp/t.bin\", O_RDONLY) = 5\n"

// TestSendfile: without an offset sendfile reads from the file's own
// offset and moves it on; with one it leaves the file's offset alone;
// a closed or unknown file is EBADF.
func TestSendfile(t *testing.T) {
	for _, tc := range []struct {
		name, body string
	}{
		{"file offset", "+0 sendfile(4, 5, NULL, 200) = 200\n+0 > P. 1:201(200) ack 1\n" +
			"+0 < . 1:1(0) ack 201 win 257\n" +
			"+0 sendfile(4, 5, [250], 10) = 10\n+0 > P. 201:211(10) ack 1\n" +
			"+0 < . 1:1(0) ack 211 win 257\n" +
			"+0 sendfile(4, 5, NULL, 200) = 100\n+0 > P. 211:311(100) ack 1\n" +
			"+0 sendfile(4, 5, NULL, 200) = 0\n"},
		{"closed", "+0 close(5) = 0\n+0 sendfile(4, 5, [0], 10) = -1 EBADF (Bad file descriptor)\n"},
		{"write-only", "+0 open(\"/tmp/t.bin\", O_WRONLY) = -1 EACCES (Permission denied)\n"},
		{"removed", "+0 `rm -f /tmp/t.bin`\n+0 open(\"/tmp/t.bin\", O_RDONLY) = -1 ENOENT (No such file or directory)\n"},
	} {
		res := Run("t.pkt", []byte(sendfileHead+tc.body), Options{Strict: true})
		if !res.Passed {
			t.Errorf("%s: %v", tc.name, res.Err)
		}
	}
}

// TestDDRefused: dd makes only files of zeroes under /tmp, of a bounded
// size, and says which operand it does not take.
func TestDDRefused(t *testing.T) {
	for _, tc := range []struct{ cmd, want string }{
		{"dd if=/dev/urandom of=/tmp/x bs=1 count=1", "only /dev/zero"},
		{"dd if=/dev/zero of=/etc/x bs=1 count=1", "only under /tmp"},
		{"dd if=/dev/zero of=/tmp/x bs=1048576 count=1048576", "at most"},
		{"dd if=/dev/zero of=/tmp/x bs=1 count=1 seek=3", "operand seek"},
	} {
		res := Run("t.pkt", []byte("`"+tc.cmd+"`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"), Options{})
		if res.Err == nil || !strings.Contains(res.Err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.cmd, res.Err, tc.want)
		}
	}
}
