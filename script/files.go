package script

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// Files a script makes for itself, kept in memory: the runner never
// touches the host's files. A shell line `dd if=/dev/zero of=/tmp/NAME
// bs=N count=M` makes /tmp/NAME, N*M zero bytes (packetdrill's payloads
// are zeroes too), `rm -f /tmp/NAME` removes it; open(PATH, FLAGS) opens
// one for reading and sendfile(OUT, IN, [OFFSET] | NULL, COUNT) sends
// from it on a socket, as Linux's sendfile: from OFFSET without moving
// the file's offset, else from the file's offset, which it advances.

// fileFdBase is the first live descriptor of an open file: far above the
// stack's and the epoll instances'.
const fileFdBase = 1 << 25

// linuxORdonly is O_RDONLY, the access mode open takes.
const linuxORdonly = 0

// maxScratchFile bounds a file a script makes (bytes).
const maxScratchFile = 1 << 26

// openFile is an open scratch file: its size and read offset.
type openFile struct {
	size, off int64
}

// dd runs `dd` with if=/dev/zero and of= a file under /tmp.
func (r *runner) dd(line int, part string, args []string) error {
	opts := map[string]string{"bs": "512", "count": "0"}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return r.unsupported(line, "shell command `%s` (dd operand %s)", part, a)
		}
		opts[k] = v
	}
	bs, err1 := strconv.ParseInt(opts["bs"], 10, 64)
	count, err2 := strconv.ParseInt(opts["count"], 10, 64)
	of := opts["of"]
	switch {
	case opts["if"] != "/dev/zero":
		return r.unsupported(line, "shell command `%s` (dd reads only /dev/zero here)", part)
	case !strings.HasPrefix(of, "/tmp/"):
		return r.unsupported(line, "shell command `%s` (the runner makes files only under /tmp)", part)
	case err1 != nil || err2 != nil || bs < 0 || count < 0 || bs*count > maxScratchFile:
		return r.unsupported(line, "shell command `%s` (dd needs bs and count, at most %d bytes)", part, maxScratchFile)
	}
	for k := range opts {
		if k != "bs" && k != "count" && k != "if" && k != "of" && k != "status" {
			return r.unsupported(line, "shell command `%s` (dd operand %s)", part, k)
		}
	}
	if r.files == nil {
		r.files = map[string]int64{}
	}
	r.files[of] = bs * count
	return nil
}

// open(PATH, FLAGS): a scratch file, read-only; ENOENT for any other.
func (r *runner) callOpen(c *callArgs) (*callOp, error) {
	if c.a[0].kind != exString {
		return r.bad(c, fmt.Errorf("open: expected a path in quotes, got %s", describeExpr(c.a[0])))
	}
	path := c.a[0].word
	flags, err := r.evalInt(c.a[1])
	if err != nil {
		return r.bad(c, err)
	}
	return &callOp{fdResult: true,
		try: func() (bool, callResult) {
			size, ok := r.files[path]
			switch {
			case !ok:
				return true, res(0, syscall.ENOENT)
			case flags&3 != linuxORdonly:
				return true, res(0, syscall.EACCES) // the runner's files are read-only
			}
			if r.openFiles == nil {
				r.openFiles = map[int]*openFile{}
			}
			fd := fileFdBase + r.nextFile
			r.nextFile++
			r.openFiles[fd] = &openFile{size: size}
			return true, res(fd, nil)
		},
		finish: func(res callResult) error { r.newFd(c.e.syscall, res); return nil },
	}, nil
}

// sendfile(OUT, IN, [OFFSET] | NULL, COUNT).
func (r *runner) callSendfile(c *callArgs) (*callOp, error) {
	in, err := r.fd(c.a[1])
	if err != nil {
		return r.bad(c, err)
	}
	count, err := r.evalInt(c.a[3])
	if err != nil {
		return r.bad(c, err)
	}
	off := int64(-1)
	if !isNull(c.a[2]) {
		if off, err = r.evalInt(c.a[2]); err != nil {
			return r.bad(c, err)
		}
	}
	f := r.openFiles[in]
	if f == nil {
		return errCall(func() error { return syscall.EBADF }, nil), nil
	}
	if count < 0 || off < -1 {
		return errCall(func() error { return syscall.EINVAL }, nil), nil
	}
	from := off
	if from < 0 {
		from = f.off
	}
	n := max(0, min(count, f.size-from))
	send := r.sender(c.fd, make([]byte, n), 0)
	return &callOp{try: send,
		finish: func(res callResult) error {
			if res.err == nil && off < 0 {
				f.off += int64(res.val)
			}
			return nil
		},
	}, nil
}

// closeFile closes an open scratch file, if fd is one.
func (r *runner) closeFile(fd int) bool {
	if _, ok := r.openFiles[fd]; !ok {
		return false
	}
	delete(r.openFiles, fd)
	return true
}
