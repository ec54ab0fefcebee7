// Package doccheck holds no code, only checks of the house as a reader
// meets it. Its tests keep the floors apart (layers_test.go: what the
// engine and tcp may import, and no gVisor in the module); read every
// Markdown file of the repository and fail on a link (or a Markdown file
// named in code) that leaves the repository, or points at a file or a
// heading that is not there: a clone has only what the repository holds,
// so the docs link nowhere else; and parse every library Go file of the
// module and fail on a function longer than 120 lines (funclen_test.go):
// past that a function no longer reads top to bottom.
package doccheck
