// Package lockcheck tests the lock analyzer that .ci/checklocks runs
// (gVisor's checklocks, built from this module so that the library never
// links gVisor): that it accepts a lock regime like synstack's, rejects a
// misuse of it, and reports what testdata/patterns says it reports for
// each form the regime needs.
package lockcheck
