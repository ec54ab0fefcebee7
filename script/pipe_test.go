package script

import "testing"

// TestPipe: the runner's pipe carries bytes from a socket (splice) to a
// read, and back to a socket; its errors are Linux's.
func TestPipe(t *testing.T) {
	run(t, handshake+`
+0  pipe([5, 6]) = 0
+0  < P. 1:101(100) ack 1 win 257
+0  > . 1:1(0) ack 101
+0  splice(4, NULL, 6, NULL, 60, 0) = 60
+0  read(5, ..., 10) = 10
+0  splice(5, NULL, 4, NULL, 100, 0) = 50
+0  > P. 1:51(50) ack 101
+0  read(5, ..., 10) = -1 EAGAIN (Resource temporarily unavailable)
+0  write(6, ..., 7) = 7
+0  read(5, ..., 10) = 7
+0  write(5, ..., 1) = -1 EBADF (Bad file descriptor)
+0  splice(4, [0], 6, NULL, 1, 0) = -1 ESPIPE (Illegal seek)
+0  splice(4, NULL, 4, NULL, 1, 0) = -1 EINVAL (Invalid argument)
+0  splice(4, NULL, 6, NULL, 1, 0x100) = -1 EINVAL (Invalid argument)
+0  close(6) = 0
+0  read(5, ..., 10) = 0
+0  close(5) = 0
`, true)
	res := run(t, handshake+`
+0  pipe(5) = 0
`, false)
	wantErr(t, res, "expected [READ_FD, WRITE_FD]")
}
