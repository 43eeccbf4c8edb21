// Package flysimtest holds the test helpers the emulator's packages share: a Machines API client and fixtures.
//
// It talks to the emulator over HTTP only and does not import internal/flysim, so that flysim's own
// (in-package) tests can use it as well as the tests of flysim/proxy and flysim/usermachine. What the
// API does not tell (whether a transition is still pending) comes from a StateFunc the caller reads
// off the Server. Section marks (§N) refer to docs/fly-api.md.
package flysimtest
