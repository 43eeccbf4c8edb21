package flyapi

import "time"

// ManualClock lets the external contract tests (package flyapi_test) use the package's fake clock:
// Sleep advances time at once, so 429s and limiter waits are waited out without real waiting.
type ManualClock = fakeClock

// NewManualClock returns a fake clock reading now.
func NewManualClock(now time.Time) *ManualClock { return &fakeClock{now: now} }
