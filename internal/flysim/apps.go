package flysim

import (
	"encoding/base64"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// appNameRE is Fly's app name rule: under 63 characters of lowercase letters, digits and dashes, not
// starting or ending with a dash.
var appNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// appFor resolves the path's app: 404 when no app has the name, 403 when it belongs to an org the
// token cannot read (names are global, so the lookup is global first). Callers hold s.mu.
func (s *Server) appFor(req *request) (*app, *apiError) {
	a := s.apps[req.appName]
	if a == nil || !s.appVisible(a) {
		return nil, newAPIError(http.StatusNotFound, msgAppNotFound)
	}
	if a.org != req.org {
		return nil, newAPIError(http.StatusForbidden, "unauthorized: the token cannot access this app")
	}
	return a, nil
}

// appVisible reports whether reads see a yet: an app is invisible for the profile's AppCreateLag
// after its create answered (§11 "App create"), though its name is taken. Callers hold s.mu.
func (s *Server) appVisible(a *app) bool { return !s.now().Before(a.visibleAt) }

// orgFor resolves an org_slug of a request body or query: the token's org only (403 otherwise).
func (s *Server) orgFor(req *request, slug string) (*org, *apiError) {
	if slug == "" {
		return nil, newAPIError(http.StatusBadRequest, "org_slug is required")
	}
	if slug != req.org || s.orgs[slug] == nil {
		return nil, newAPIError(http.StatusForbidden, "unauthorized: the token cannot access organization %q", slug)
	}
	return s.orgs[slug], nil
}

type createAppRequest struct {
	AppName          string `json:"app_name"`
	Name             string `json:"name"`
	OrgSlug          string `json:"org_slug"`
	Network          string `json:"network"`
	EnableSubdomains bool   `json:"enable_subdomains"`
	AppRoleID        string `json:"app_role_id"`
	IdempotencyKey   string `json:"idempotency_key"`
}

type createAppResponse struct {
	ID        string `json:"id"`
	CreatedAt int64  `json:"created_at"` // epoch milliseconds
}

func (s *Server) createApp(req *request) reply {
	var body createAppRequest
	if err := req.decodeBody(&body, false); err != nil {
		return errReply(err)
	}
	wait, err := req.boolQuery("wait")
	if err != nil {
		return errReply(err)
	}
	// The docs send app_name, the spec and fly-go name (§10): accept either, not both disagreeing.
	name := body.Name
	if body.AppName != "" {
		if name != "" && name != body.AppName {
			return errorf(http.StatusBadRequest, "invalid_argument: app_name and name disagree")
		}
		name = body.AppName
	}
	req.logApp = name

	rep, a, hold := s.createAppLocked(req, body, name, wait)
	if hold > 0 {
		s.holdUntilVisible(req, a, hold)
	}
	return rep
}

// createAppLocked creates the app. hold is how long a ?wait=true create holds its answer (the app's
// invisible window but for a residual), 0 when it answers at once.
func (s *Server) createAppLocked(req *request, body createAppRequest, name string, wait bool) (rep reply, a *app, hold time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.orgFor(req, body.OrgSlug)
	if err != nil {
		return errReply(err), nil, 0
	}
	if key := body.IdempotencyKey; key != "" {
		if prior, ok := o.idempotencyKeys[key]; ok {
			if name != "" && name != prior {
				return errorf(http.StatusUnprocessableEntity, "Validation failed: idempotency_key was already used to create another app"), nil, 0
			}
			if a := s.apps[prior]; a != nil {
				req.logApp = prior
				return jsonReply(http.StatusCreated, createAppResponse{ID: a.id, CreatedAt: a.createdAt.UnixMilli()}), nil, 0
			}
			delete(o.idempotencyKeys, key) // that app was deleted since: create afresh
		}
	}
	switch {
	case name == "":
		return errorf(http.StatusUnprocessableEntity, "Validation failed: Name can't be blank"), nil, 0
	case !appNameRE.MatchString(name):
		return errorf(http.StatusUnprocessableEntity, "Validation failed: Name under 63 chars using numbers, lowercase letters and dashes"), nil, 0
	case s.apps[name] != nil:
		return errReply(&apiError{httpStatus: http.StatusUnprocessableEntity, message: "Validation failed: Name has already been taken", code: "name_taken"}), nil, 0
	}
	nw, err := s.networkForApp(o, body.Network)
	if err != nil {
		return errReply(err), nil, 0
	}
	id := s.ids.appID()
	a = &app{
		id:        id,
		name:      name,
		org:       o.slug,
		network:   nw,
		numericID: s.ids.numericID(),
		createdAt: s.now(),
		machines:  map[string]*machine{},
		secrets:   map[string]*secret{},
		rng:       seededRNG(s.opts.Seed, "app/"+name+"/"+id),
	}
	// §11 "App create": the app is not readable at once. With ?wait=true (fly-go) the answer waits
	// for most of that window, but not all of it: fly-go still polls GET for up to a minute.
	if lag := s.profile.draw(a.rng, s.profile.AppCreateLag); lag > 0 {
		a.visibleAt = a.createdAt.Add(lag)
		if wait {
			residual := min(s.profile.draw(a.rng, s.profile.AppCreateWaitResidual), lag)
			hold = lag - residual
		}
	}
	s.apps[name] = a
	delete(s.deletedApps, name)
	if body.IdempotencyKey != "" {
		o.idempotencyKeys[body.IdempotencyKey] = name
	}
	return jsonReply(http.StatusCreated, createAppResponse{ID: a.id, CreatedAt: a.createdAt.UnixMilli()}), a, hold
}

// holdUntilVisible holds a ?wait=true create's answer for hold (a real sleep), then makes the app
// visible but for the rest of its window from now, as measured by Options.Now: with a fake clock
// the residual still has to pass on it.
func (s *Server) holdUntilVisible(req *request, a *app, hold time.Duration) {
	if !s.sleep(req.r, hold) {
		return // the client left or the server closed: the app keeps its whole window
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	residual := a.visibleAt.Sub(a.createdAt) - hold
	if v := s.now().Add(residual); v.Before(a.visibleAt) {
		a.visibleAt = v
	}
}

type orgView struct {
	Name              string `json:"name"`
	Slug              string `json:"slug"`
	InternalNumericID int64  `json:"internal_numeric_id"`
}

// appView is the App shape of get (§2).
type appView struct {
	ID                string  `json:"id"`
	Name              string  `json:"name"`
	Status            string  `json:"status"`
	Organization      orgView `json:"organization"`
	Network           string  `json:"network"`
	NetworkCIDR       string  `json:"network_cidr"`
	MachineCount      int     `json:"machine_count"`
	VolumeCount       int     `json:"volume_count"`
	InternalNumericID int64   `json:"internal_numeric_id"`
}

// appStatus is "pending" until the app has a machine, then "deployed" (the values fly-go knows).
func appStatus(a *app) string {
	if a.liveMachineCount() == 0 {
		return "pending"
	}
	return "deployed"
}

func (s *Server) getApp(req *request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.appFor(req)
	if err != nil {
		return errReply(err)
	}
	o := s.orgs[a.org]
	return jsonReply(http.StatusOK, appView{
		ID:                a.id,
		Name:              a.name,
		Status:            appStatus(a),
		Organization:      orgView{Name: o.slug, Slug: o.slug, InternalNumericID: o.numericID},
		Network:           a.network.displayName(),
		NetworkCIDR:       a.network.prefix() + "::/48",
		MachineCount:      a.liveMachineCount(),
		VolumeCount:       0,
		InternalNumericID: a.numericID,
	})
}

type appListItem struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	MachineCount int    `json:"machine_count"`
	VolumeCount  int    `json:"volume_count"`
	Network      string `json:"network"`
}

type appListResponse struct {
	TotalApps  int           `json:"total_apps"`
	Apps       []appListItem `json:"apps"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

// maxAppsPage is the largest list page (limit 1–5000 per the sheet).
const maxAppsPage = 5000

func (s *Server) listApps(req *request) reply {
	q := req.r.URL.Query()
	limit, err := pageLimit(q.Get("limit"), maxAppsPage)
	if err != nil {
		return errReply(err)
	}
	after, err := s.decodeCursor(q.Get("cursor"))
	if err != nil {
		return errReply(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.orgFor(req, q.Get("org_slug"))
	if err != nil {
		return errReply(err)
	}
	var names []string
	for name, a := range s.apps {
		if a.org == o.slug && s.appVisible(a) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	resp := appListResponse{TotalApps: len(names), Apps: []appListItem{}}
	rest := slices.DeleteFunc(slices.Clone(names), func(name string) bool { return after != "" && name <= after })
	page := rest
	if limit > 0 {
		// Advisory, like the machine list's (§4.3): the profile's ShortPages may cut a page short.
		page = rest[:min(s.decide.pageLen(s.profile, limit), len(rest))]
		if len(page) < len(rest) {
			last := after
			if len(page) > 0 {
				last = page[len(page)-1]
			}
			resp.NextCursor = s.encodeCursor(last)
		}
	}
	for _, name := range page {
		a := s.apps[name]
		resp.Apps = append(resp.Apps, appListItem{ID: a.id, Name: a.name, MachineCount: a.liveMachineCount(), Network: a.network.displayName()})
	}
	return jsonReply(http.StatusOK, resp)
}

// pageLimit parses a `limit`: empty means no paging (0); values above max are clamped, as the sheet
// calls the limit advisory; anything else but a positive integer is a 400.
func pageLimit(v string, maxLimit int) (int, *apiError) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, newAPIError(http.StatusBadRequest, "invalid_argument: limit must be a positive integer")
	}
	return min(n, maxLimit), nil
}

// Cursors are opaque to clients: base64 of the last item's sort key. Under a profile that cuts pages
// short, the key carries a "|n" suffix numbering the cursor, so that an empty page (whose position did
// not move) still hands out a cursor never seen before, as an opaque server-side cursor would.
func (s *Server) encodeCursor(key string) string {
	if s.profile.ShortPages > 0 {
		key += "|" + strconv.FormatUint(s.cursorSeq.Add(1), 10)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(key))
}

func (s *Server) decodeCursor(c string) (string, *apiError) {
	if c == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) == 0 {
		return "", newAPIError(http.StatusBadRequest, "invalid_argument: invalid cursor")
	}
	key, _, _ := strings.Cut(string(b), "|") // app names and machine sequence numbers never hold "|"
	return key, nil
}

func (s *Server) deleteApp(req *request) reply {
	force, err := req.boolQuery("force")
	if err != nil {
		return errReply(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.appFor(req)
	if err != nil {
		return errReply(err)
	}
	if !force {
		// Stricter: the docs only say machines "should be stopped before attempting deletion"; the
		// emulator refuses while any machine runs, so clients must stop them or pass force=true.
		for _, m := range a.machines {
			if running(m) {
				return errorf(http.StatusPreconditionFailed,
					"failed_precondition: app has running machines, stop them first or delete with force=true")
			}
		}
	}
	if a.deleting {
		return emptyReply(http.StatusAccepted) // already on its way
	}
	// §2: 202 Accepted, completion asynchronous. Under the profile's AppDeleteLag the app, its machines
	// and its name stay until the delete completes.
	if lag := s.profile.draw(a.rng, s.profile.AppDeleteLag); lag > 0 {
		a.deleting = true
		a.deleteTimer = time.AfterFunc(lag, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if !s.closed && s.apps[a.name] == a {
				s.removeApp(a)
			}
		})
		return emptyReply(http.StatusAccepted)
	}
	s.removeApp(a)
	return emptyReply(http.StatusAccepted)
}

// removeApp deletes a and cascades to its machines (destroyed at once), secrets and addresses.
func (s *Server) removeApp(a *app) {
	for _, m := range a.machines {
		s.destroyNow(m)
	}
	info := s.appInfo(a)
	info.Deleted = true
	s.deletedApps[a.name] = &info
	delete(s.apps, a.name)
}
