package tcp

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// connSizeMax is unsafe.Sizeof(Conn{}) on amd64 when the TCB was one flat
// struct of 106 fields (measured on main at 2cb5626): grouping it
// into the RFC's parts must not make a connection bigger. Lower it when a
// change shrinks the Conn; never raise it without saying why in the commit.
//
// 744: the Fast Open state's pointer (nil unless the connection used
// Fast Open), 8 bytes, where the state itself would have been 32.
const connSizeMax = 752

// TestConnSize keeps the memory of a connection: the Conn is no bigger
// than connSizeMax, and on failure it shows where the padding went.
func TestConnSize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("connSizeMax is measured on a 64-bit platform")
	}
	size := unsafe.Sizeof(Conn{})
	t.Logf("unsafe.Sizeof(Conn{}) = %d (at most %d)\n%s", size, connSizeMax, layout(reflect.TypeOf(Conn{})))
	if size > connSizeMax {
		t.Errorf("unsafe.Sizeof(Conn{}) = %d, more than %d; padding per group:\n%s", size, connSizeMax, layout(reflect.TypeOf(Conn{})))
	}
	if p := padding(reflect.TypeOf(Conn{})); p != 0 {
		t.Errorf("Conn's own fields leave %d bytes of padding: order the groups by alignment (8, then 4, then bytes)", p)
	}
}

// padding is the bytes of typ, a struct, that none of its own fields use.
func padding(typ reflect.Type) uintptr {
	used := uintptr(0)
	for i := range typ.NumField() {
		used += typ.Field(i).Type.Size()
	}
	return typ.Size() - used
}

// layout lists typ's struct fields with their size and padding.
func layout(typ reflect.Type) string {
	var b strings.Builder
	for i := range typ.NumField() {
		f := typ.Field(i)
		fmt.Fprintf(&b, "  %4d %-12s %4d bytes", f.Offset, f.Name, f.Type.Size())
		if f.Type.Kind() == reflect.Struct {
			fmt.Fprintf(&b, ", %d of padding", padding(f.Type))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// TestPaddingCounts checks the helper the size test reports with.
func TestPaddingCounts(t *testing.T) {
	type loose struct {
		a bool
		b int64
		c bool
	}
	type tight struct {
		b    int64
		a, c bool
	}
	if p := padding(reflect.TypeOf(loose{a: true, b: 1, c: true})); p != 14 {
		t.Errorf("padding(loose) = %d, want 14", p)
	}
	if p := padding(reflect.TypeOf(tight{a: true, b: 1, c: true})); p != 6 {
		t.Errorf("padding(tight) = %d, want 6", p)
	}
}
