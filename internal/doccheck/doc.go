// Package doccheck holds no code: its test reads every Markdown file of the
// repository and fails on a link (or a Markdown file named in code) that
// leaves the repository, or points at a file or a heading that is not
// there. A clone has only what the repository holds, so the docs link
// nowhere else.
package doccheck
