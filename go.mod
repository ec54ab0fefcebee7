module github.com/synstack/synstack

go 1.26
