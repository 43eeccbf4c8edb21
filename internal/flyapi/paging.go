package flyapi

import (
	"errors"
	"fmt"
)

// headerNextCursor carries the machine list's next-page cursor (§4.3).
const headerNextCursor = "fly-next-cursor"

// maxListPages bounds one list call. Fly's pages may be empty, so the page count is not bounded by
// the number of items; a list that is still handing out new cursors after this many pages is
// failed rather than followed forever.
const maxListPages = 1000

// ErrPaging is wrapped by the error of a list call that stopped because Fly's cursors did not end:
// a cursor handed back a second time (which would loop) or more than maxListPages pages.
var ErrPaging = errors.New("flyapi: the list's page cursors do not end")

// pager follows a list's cursors. Fly's limit is advisory (§11): a page may be shorter than asked,
// or empty, while the cursor says more remain, so only the absence of a cursor ends a list; a page's
// length never does.
type pager struct {
	cursor string // the cursor of the page to ask for next; "" for the first page
	seen   map[string]bool
	pages  int
}

// next records the cursor a page came back with and says whether another page must be read.
func (p *pager) next(action, cursor string) (bool, error) {
	p.pages++
	if cursor == "" {
		return false, nil
	}
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	switch {
	case p.seen[cursor]:
		return false, fmt.Errorf("%w: %s: page %d handed back a cursor already followed", ErrPaging, action, p.pages)
	case p.pages >= maxListPages:
		return false, fmt.Errorf("%w: %s: still more after %d pages", ErrPaging, action, p.pages)
	}
	p.seen[cursor] = true
	p.cursor = cursor
	return true, nil
}
