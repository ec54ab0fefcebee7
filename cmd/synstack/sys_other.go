//go:build !linux

package main

import "errors"

// setMark fails: SO_MARK is Linux's.
func setMark(fd uintptr, mark int) error {
	return errors.New("--mark needs Linux (SO_MARK)")
}
