// Package seq is TCP sequence-number arithmetic modulo 2^32 (RFC 9293 section 3.4).
//
// Every comparison is made on the signed 32-bit difference of two values, so it
// is correct across the wrap as long as the values are less than 2^31 apart,
// which the window rules of TCP guarantee.
package seq

// Value is a sequence number (or an acknowledgment number, which is one).
type Value uint32

// Size is a length in sequence space: octets of data plus one for SYN and FIN.
type Size uint32

// Add returns v + n modulo 2^32.
func (v Value) Add(n Size) Value { return v + Value(n) }

// Sub returns the distance from w up to v (v - w modulo 2^32), as a signed
// number: negative when v is before w.
func (v Value) Sub(w Value) int32 { return int32(v - w) }

// LessThan reports whether v comes before w.
func (v Value) LessThan(w Value) bool { return int32(v-w) < 0 }

// LessThanEq reports whether v comes before w or equals it.
func (v Value) LessThanEq(w Value) bool { return int32(v-w) <= 0 }

// GreaterThan reports whether v comes after w.
func (v Value) GreaterThan(w Value) bool { return int32(v-w) > 0 }

// GreaterThanEq reports whether v comes after w or equals it.
func (v Value) GreaterThanEq(w Value) bool { return int32(v-w) >= 0 }

// InRange reports whether first <= v < end, the half-open interval [first, end).
func (v Value) InRange(first, end Value) bool {
	return v-first < end-first
}

// InWindow reports whether v lies in the window of size n starting at first:
// first <= v < first+n. A zero window holds nothing.
func (v Value) InWindow(first Value, n Size) bool {
	return uint32(v-first) < uint32(n)
}

// Max returns the later of v and w.
func Max(v, w Value) Value {
	if v.LessThan(w) {
		return w
	}
	return v
}

// Min returns the earlier of v and w.
func Min(v, w Value) Value {
	if v.LessThan(w) {
		return v
	}
	return w
}
