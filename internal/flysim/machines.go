package flysim

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// machineFor resolves the path's app and machine; 404 `machine not found` for unknown IDs. Callers hold s.mu.
func (s *Server) machineFor(req *request) (*machine, *apiError) {
	a, err := s.appFor(req)
	if err != nil {
		return nil, err
	}
	m := a.machines[req.machineID]
	if m == nil || s.gone(m) {
		return nil, newAPIError(http.StatusNotFound, msgMachineNotFound)
	}
	return m, nil
}

// gone reports a destroyed machine past its profile's DestroyedReadable window: the API no longer
// knows it (§11 "Destroyed"). Callers hold s.mu.
func (s *Server) gone(m *machine) bool {
	return m.state == StateDestroyed && !m.goneAt.IsZero() && !s.now().Before(m.goneAt)
}

// createMachineRequest is CreateMachineRequest (§4.2); update adds current_version (§4.4).
type createMachineRequest struct {
	Name                    string          `json:"name"`
	Region                  string          `json:"region"`
	Config                  json.RawMessage `json:"config"`
	SkipLaunch              bool            `json:"skip_launch"`
	SkipServiceRegistration bool            `json:"skip_service_registration"`
	LeaseTTL                int64           `json:"lease_ttl"`
	SkipSecrets             bool            `json:"skip_secrets"`
	MinSecretsVersion       *uint64         `json:"min_secrets_version"`
	LSVD                    bool            `json:"lsvd"`
	CurrentVersion          string          `json:"current_version"`
}

// regionRE: Fly region codes are three lowercase letters. The emulator does not know which exist.
var regionRE = regexp.MustCompile(`^[a-z]{3}$`)

// maxMachineNameLen bounds machine names like other Fly names.
const maxMachineNameLen = 63

// checkMinSecretsVersion refuses a machine version that needs app secrets newer than the app has.
// The sheet does not say how Fly answers; the emulator treats it as an unmet precondition (412).
func checkMinSecretsVersion(a *app, minVersion *uint64) *apiError {
	if minVersion != nil && *minVersion > a.secretsVer {
		return newAPIError(http.StatusPreconditionFailed,
			"failed_precondition: app secrets are at version %d, older than min_secrets_version %d", a.secretsVer, *minVersion)
	}
	return nil
}

func (s *Server) createMachine(req *request) reply {
	var body createMachineRequest
	if err := req.decodeBody(&body, false); err != nil {
		return errReply(err)
	}
	cfgJSON, err := parseConfig(body.Config, s.profile.TypedConfig)
	if err != nil {
		return errReply(err)
	}
	if body.Region != "" && !regionRE.MatchString(body.Region) {
		return errorf(http.StatusUnprocessableEntity, "invalid_argument: region %q is not a Fly region code", body.Region)
	}
	if len(body.Name) > maxMachineNameLen {
		return errorf(http.StatusUnprocessableEntity, "invalid_argument: name must be at most %d characters", maxMachineNameLen)
	}
	if body.LeaseTTL < 0 {
		return errorf(http.StatusBadRequest, "invalid_argument: lease_ttl must not be negative")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.appFor(req)
	if err != nil {
		return errReply(err)
	}
	name := body.Name
	if name == "" {
		for name == "" || a.machineNamed(name) != nil {
			name = s.ids.machineName()
		}
	} else if a.machineNamed(name) != nil && !s.profile.DuplicateMachineNames {
		// Open in the sheet: whether Fly refuses a duplicate name. The fast profile does; the realistic
		// one (DuplicateMachineNames) takes the less kind reading and creates a second machine.
		return errReply(&apiError{httpStatus: http.StatusUnprocessableEntity,
			message: fmt.Sprintf("Validation failed: a machine named %q already exists in this app", name), code: "name_taken"})
	}
	if err := checkMinSecretsVersion(a, body.MinSecretsVersion); err != nil {
		return errReply(err)
	}
	region := body.Region
	if region == "" {
		region = DefaultRegion
	}
	secretValues, secretsVersion := s.bootSecrets(a, body.SkipSecrets, body.MinSecretsVersion)
	now := s.now()
	a.machineSeq++
	id := s.ids.machineID()
	m := &machine{
		app:       a,
		id:        id,
		rng:       seededRNG(s.opts.Seed, "machine/"+a.name+"/"+id),
		name:      name,
		region:    region,
		privateIP: a.network.prefix() + ":" + s.ids.hostSuffix(),
		seq:       a.machineSeq,
		cordoned:  body.SkipServiceRegistration,
		createdAt: now,
		updatedAt: now,
		changed:   make(chan struct{}),
		versions: []*machineVersion{{
			id: s.ids.ulid(now), config: cfgJSON, createdAt: now,
			secretsVersion: secretsVersion, skipSecrets: body.SkipSecrets,
			secretValues: secretValues,
		}},
	}
	if lag := s.profile.draw(m.rng, s.profile.ListLag); lag > 0 {
		m.listedAt = now.Add(lag) // §11 "Read-after-write": the list learns of the create later
	}
	a.machines[m.id] = m
	req.logMachine = m.id
	// Creation is a state change from nothing to created, with its `launch` event.
	s.setState(m, StateCreated, "launch", sourceUser)
	if !body.SkipLaunch {
		s.launch(m)
	}
	view := s.viewMachine(m, m.current(), viewOptions{})
	if body.LeaseTTL > 0 {
		l := s.newLease(m, req.owner, "", time.Duration(body.LeaseTTL)*time.Second)
		view.Nonce = l.nonce
	}
	return jsonReply(http.StatusOK, view)
}

// machineView is the Machine object (§4.1).
type machineView struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	State      string          `json:"state"`
	Region     string          `json:"region"`
	InstanceID string          `json:"instance_id"`
	Version    string          `json:"version"`
	PrivateIP  string          `json:"private_ip"`
	CreatedAt  string          `json:"created_at"`
	UpdatedAt  string          `json:"updated_at"`
	Config     json.RawMessage `json:"config,omitempty"`
	ImageRef   *imageRef       `json:"image_ref,omitempty"`
	Events     []eventView     `json:"events,omitempty"`
	Checks     []checkView     `json:"checks,omitempty"`
	HostStatus string          `json:"host_status,omitempty"`
	Cordoned   bool            `json:"cordoned"`
	Nonce      string          `json:"nonce,omitempty"`
	Lease      *leaseInfoView  `json:"lease,omitempty"`
}

type eventView struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Status    string `json:"status"`
	Source    string `json:"source"`
	Timestamp int64  `json:"timestamp"` // epoch milliseconds
}

// leaseInfoView is the `lease` of include_leases (S): no nonce.
type leaseInfoView struct {
	Description string `json:"description"`
	ExpiresAt   int64  `json:"expires_at"`
	Owner       string `json:"owner"`
}

type viewOptions struct {
	summary       bool // summary=true: no config, checks, events, host_status, nonce
	includeLeases bool
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// viewMachine renders m at version v; an old version reads `replaced`. Callers hold s.mu.
func (s *Server) viewMachine(m *machine, v *machineVersion, opts viewOptions) machineView {
	state := m.state
	if v != m.current() {
		state = StateReplaced
	}
	view := machineView{
		ID: m.id, Name: m.name, State: state, Region: m.region,
		InstanceID: v.id, Version: v.id, PrivateIP: m.privateIP,
		CreatedAt: rfc3339(m.createdAt), UpdatedAt: rfc3339(m.updatedAt),
		Cordoned: m.cordoned,
	}
	ref := parseImageRef(configImage(v.config))
	view.ImageRef = &ref
	if !opts.summary {
		view.Config = v.config
		view.HostStatus = "ok"
		view.Events = make([]eventView, len(m.events))
		for i, e := range m.events {
			view.Events[i] = eventView{ID: e.id, Type: e.typ, Status: e.status, Source: e.source, Timestamp: e.at.UnixMilli()}
		}
		view.Checks = s.checkViews(m, v, state)
	}
	if opts.includeLeases {
		if l := s.activeLease(m); l != nil {
			view.Lease = &leaseInfoView{Description: l.description, ExpiresAt: l.expiresAt.Unix(), Owner: l.owner}
		}
	}
	return view
}

func (s *Server) getMachine(req *request) reply {
	q := req.r.URL.Query()
	includeLeases, err := req.boolQuery("include_leases")
	if err != nil {
		return errReply(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.machineFor(req)
	if err != nil {
		return errReply(err)
	}
	v := m.current()
	if want := q.Get("version"); want != "" {
		if v = m.version(want); v == nil {
			return errorf(http.StatusNotFound, "machine version not found")
		}
	}
	return jsonReply(http.StatusOK, s.viewMachine(m, v, viewOptions{includeLeases: includeLeases}))
}

// maxMachinesPage is the largest machine list page (limit 1–1000, advisory).
const maxMachinesPage = 1000

func (s *Server) listMachines(req *request) reply {
	q := req.r.URL.Query()
	var opts viewOptions
	var err *apiError
	if opts.summary, err = req.boolQuery("summary"); err != nil {
		return errReply(err)
	}
	if opts.includeLeases, err = req.boolQuery("include_leases"); err != nil {
		return errReply(err)
	}
	includeDeleted, err := req.boolQuery("include_deleted")
	if err != nil {
		return errReply(err)
	}
	limit, err := pageLimit(q.Get("limit"), maxMachinesPage)
	if err != nil {
		return errReply(err)
	}
	var afterSeq uint64
	if c := q.Get("cursor"); c != "" {
		key, err := s.decodeCursor(c)
		if err != nil {
			return errReply(err)
		}
		n, perr := strconv.ParseUint(key, 10, 64)
		if perr != nil {
			return errorf(http.StatusBadRequest, "invalid_argument: invalid cursor")
		}
		afterSeq = n
	}
	states := map[string]bool{}
	if v := q.Get("state"); v != "" {
		for st := range strings.SplitSeq(v, ",") {
			if !knownStates[st] {
				return errorf(http.StatusBadRequest, "invalid_argument: unknown state %q", st)
			}
			states[st] = true
		}
	}
	metadata := map[string][]string{}
	for k, vs := range q {
		if key, ok := strings.CutPrefix(k, "metadata."); ok && key != "" {
			metadata[key] = vs
		}
	}
	region := q.Get("region")

	s.mu.Lock()
	defer s.mu.Unlock()
	a, aerr := s.appFor(req)
	if aerr != nil {
		return errReply(aerr)
	}
	now := s.now()
	ordered := make([]*machine, 0, len(a.machines))
	for _, m := range a.machines {
		ordered = append(ordered, m)
	}
	slices.SortFunc(ordered, func(x, y *machine) int { return cmp.Compare(x.seq, y.seq) })
	type listed struct {
		m     *machine
		state string
	}
	var matched []listed
	for _, m := range ordered {
		state, ok := s.listedState(m, now)
		switch {
		case !ok,
			m.seq <= afterSeq,
			state == StateDestroyed && !includeDeleted,
			len(states) > 0 && !states[state],
			region != "" && m.region != region,
			!metadataMatches(configMetadata(m.current().config), metadata):
			continue
		}
		matched = append(matched, listed{m, state})
	}
	page := matched
	rep := reply{status: http.StatusOK}
	if limit > 0 {
		// The limit is advisory (§4.3): under the profile's ShortPages a page may hold fewer, none
		// even, while the cursor says more remain.
		n := min(s.decide.pageLen(s.profile, limit), len(matched))
		page = matched[:n]
		if n < len(matched) {
			last := afterSeq
			if n > 0 {
				last = page[n-1].m.seq
			}
			rep.header = map[string]string{"fly-next-cursor": s.encodeCursor(strconv.FormatUint(last, 10))}
		}
	}
	out := make([]machineView, 0, len(page))
	for _, l := range page {
		view := s.viewMachine(l.m, l.m.current(), opts)
		view.State = l.state
		out = append(out, view)
	}
	rep.body = out
	return rep
}

// listedState is how the machine list shows m at now, and whether it shows it at all: the list
// learns of a create and of a destroy only after the profile's ListLag (and SetListLag's fixed lag
// on creates), and meanwhile lists a destroyed machine in the state it had before. Callers hold s.mu.
func (s *Server) listedState(m *machine, now time.Time) (string, bool) {
	switch {
	case s.listLag > 0 && now.Sub(m.createdAt) < s.listLag, now.Before(m.listedAt):
		return "", false
	case m.state == StateDestroyed && now.Before(m.delistedAt):
		return m.stateBeforeDestroyed, true
	}
	return m.state, true
}

// metadataMatches ANDs every metadata.<key>=<value> filter: exact matches only.
func metadataMatches(md map[string]string, filters map[string][]string) bool {
	for k, vs := range filters {
		for _, v := range vs {
			if md[k] != v {
				return false
			}
		}
	}
	return true
}
