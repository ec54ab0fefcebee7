module github.com/synstack/synstack/contrib/wireguard

go 1.25.0

require (
	github.com/synstack/synstack v0.1.0
	go.uber.org/goleak v1.3.0
	golang.org/x/net v0.58.0
	golang.zx2c4.com/wireguard v0.0.0-20260522210424-ecfc5a8d5446
)

require (
	golang.org/x/crypto v0.55.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
	golang.zx2c4.com/wintun v0.0.0-20230126152724-0fa3db229ce2 // indirect
)

replace github.com/synstack/synstack => ../..
