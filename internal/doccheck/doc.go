// Package doccheck holds no code, only the checks of the house. Its tests
// keep the floors apart (layers_test.go: what the engine and tcp may
// import, and no gVisor in the module), and read every Markdown file of
// the repository, failing on a link (or a Markdown file named in code)
// that leaves the repository, or points at a file or a heading that is
// not there. A clone has only what the repository holds, so the docs link
// nowhere else.
package doccheck
