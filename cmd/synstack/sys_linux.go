package main

import "syscall"

// setMark sets SO_MARK on a host socket (--mark: policy routing keeps the
// forwarder's own traffic out of the TUN device).
func setMark(fd uintptr, mark int) error {
	return syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK, mark)
}
