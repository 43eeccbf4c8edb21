package flysim

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
)

// Server is the emulated Fly Machines API. It implements http.Handler, serving under /v1.
type Server struct {
	opts    Options
	profile Profile
	log     logr.Logger
	now     func() time.Time
	mux     *http.ServeMux

	// mu guards all API state below (and every app, machine and network reachable from it).
	mu          sync.Mutex
	ids         *idGenerator
	orgs        map[string]*org
	apps        map[string]*app     // live apps by (globally unique) name
	deletedApps map[string]*AppInfo // last deleted app of each name, for inspection
	listLag     time.Duration
	publicIPs   int // public addresses handed out, for unique addresses
	closed      bool
	done        chan struct{} // closed by Close: wakes waiters

	authMu  sync.RWMutex
	tokens  map[string]tokenInfo
	revoked map[string]bool

	limits     *limiterSet
	faults     *faultSet
	decide     *decider // the profile's per-request decisions
	calls      callLog
	bus        *eventBus
	requestSeq atomic.Uint64
	callSeq    atomic.Uint64 // numbers the calls for the call log and CallHook
	cursorSeq  atomic.Uint64 // numbers list cursors under a profile with ShortPages
}

// New returns a Server for opts. It panics when opts.Orgs is empty or opts.Profile is invalid
// (Profile.Validate), programming errors.
func New(opts Options) *Server {
	if len(opts.Orgs) == 0 {
		panic("flysim: Options.Orgs needs at least one token")
	}
	if err := opts.Profile.Validate(); err != nil {
		panic(err.Error())
	}
	opts = opts.withDefaults()
	s := &Server{
		opts:        opts,
		profile:     opts.Profile.clone(),
		log:         opts.Logger,
		now:         opts.Now,
		mux:         http.NewServeMux(),
		ids:         newIDGenerator(opts.Seed),
		orgs:        map[string]*org{},
		apps:        map[string]*app{},
		deletedApps: map[string]*AppInfo{},
		done:        make(chan struct{}),
		tokens:      map[string]tokenInfo{},
		revoked:     map[string]bool{},
		limits:      &limiterSet{buckets: map[[2]string]*rate.Limiter{}},
		faults:      newFaultSet(opts.Seed),
		decide:      newDecider(opts.Seed),
		bus:         newEventBus(),
	}
	for i, ot := range opts.Orgs {
		s.tokens[ot.Token] = tokenInfo{org: ot.Org, owner: ownerFor(i, ot.Org)}
		if s.orgs[ot.Org] == nil {
			s.orgs[ot.Org] = &org{
				slug:            ot.Org,
				numericID:       s.ids.numericID(),
				defaultNetwork:  &network{id: s.ids.networkID(), org: ot.Org},
				networks:        map[string]*network{},
				idempotencyKeys: map[string]string{},
			}
		}
	}
	s.routes()
	return s
}

// ServeHTTP answers one API request. Every response carries a unique fly-request-id; unknown routes
// get Go's plain-text `404 page not found`, as Fly's API does.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("fly-request-id", s.newRequestID())
	s.mux.ServeHTTP(w, r)
}

// newRequestID makes the request ID of an API answer (see NewRequestID).
func (s *Server) newRequestID() string { return s.NewRequestID(s.now(), DefaultRegion) }

// Close stops pending transitions and event delivery and wakes blocked /wait calls. The Server must
// not be used afterwards.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	for _, a := range s.apps {
		if a.deleteTimer != nil {
			a.deleteTimer.Stop()
		}
		for _, m := range a.machines {
			s.cancelPending(m)
		}
	}
	s.mu.Unlock()
	s.bus.close()
}

func (s *Server) routes() {
	const (
		apps    = "/v1/apps"
		app     = apps + "/{app}"
		machine = app + "/machines/{id}"
	)
	s.handle("POST "+apps, actCreateApp, perOrg, s.createApp)
	s.handle("GET "+apps, actListApps, perOrg, s.listApps)
	s.handle("GET "+app, actGetApp, perApp, s.getApp)
	s.handle("DELETE "+app, actDeleteApp, perOrg, s.deleteApp)

	s.handle("GET "+app+"/ip_assignments", actListIPs, perApp, s.listIPs)
	s.handle("POST "+app+"/ip_assignments", actAssignIP, perApp, s.assignIP)
	s.handle("DELETE "+app+"/ip_assignments/{ip}", actDeleteIP, perApp, s.deleteIP)

	s.handle("GET "+app+"/secrets", actListSecrets, perApp, s.listSecrets)
	s.handle("POST "+app+"/secrets", actSetSecrets, perApp, s.setSecrets)
	s.handle("GET "+app+"/secrets/{name}", actGetSecret, perApp, s.getSecret)
	s.handle("POST "+app+"/secrets/{name}", actSetSecret, perApp, s.setSecret)
	s.handle("DELETE "+app+"/secrets/{name}", actDeleteSecret, perApp, s.deleteSecret)

	s.handle("POST "+app+"/machines", actCreateMachine, perApp, s.createMachine)
	s.handle("GET "+app+"/machines", actListMachines, perApp, s.listMachines)
	s.handle("GET "+machine, actGetMachine, perMachine, s.getMachine)
	s.handle("POST "+machine, actUpdateMachine, perMachine, s.updateMachine)
	s.handle("DELETE "+machine, actDestroyMachine, perMachine, s.destroyMachine)
	s.handle("POST "+machine+"/start", actStartMachine, perMachine, s.startMachine)
	s.handle("POST "+machine+"/stop", actStopMachine, perMachine, s.stopMachine)
	s.handle("POST "+machine+"/suspend", actSuspendMachine, perMachine, s.suspendMachine)
	s.handle("POST "+machine+"/restart", actRestartMachine, perMachine, s.restartMachine)
	s.handle("POST "+machine+"/signal", actSignalMachine, perMachine, s.signalMachine)
	s.handle("POST "+machine+"/cordon", actCordonMachine, perMachine, s.cordonMachine)
	s.handle("POST "+machine+"/uncordon", actUncordonMachine, perMachine, s.uncordonMachine)
	s.handle("GET "+machine+"/wait", actWaitMachine, perMachine, s.waitMachine)

	s.handle("POST "+machine+"/lease", actAcquireLease, perMachine, s.acquireLease)
	s.handle("GET "+machine+"/lease", actGetLease, perMachine, s.getLease)
	s.handle("DELETE "+machine+"/lease", actReleaseLease, perMachine, s.releaseLease)

	s.handle("GET "+machine+"/metadata", actGetMetadata, perMachine, s.getMetadata)
	s.handle("PATCH "+machine+"/metadata", actPatchMetadata, perMachine, s.patchMetadata)
	s.handle("PUT "+machine+"/metadata", actPatchMetadata, perMachine, s.patchMetadata) // deprecated alias
	s.handle("GET "+machine+"/metadata/{key}", actGetMetadata, perMachine, s.getMetadataKey)
	s.handle("POST "+machine+"/metadata/{key}", actSetMetadata, perMachine, s.setMetadataKey)
	s.handle("DELETE "+machine+"/metadata/{key}", actDeleteMetadata, perMachine, s.deleteMetadataKey)

	// Unmatched paths: Go's plain-text 404, logged as a call without an action.
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.calls.add(Call{Time: s.now(), Method: r.Method, Path: r.URL.Path, Status: http.StatusNotFound})
		http.NotFound(w, r)
	})
}
