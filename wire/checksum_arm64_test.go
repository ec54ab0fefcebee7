//go:build !purego

package wire

func init() {
	asmChecksum = func(b []byte, initial uint32) uint32 {
		return addSwapped(sumNEON(b), initial)
	}
}
