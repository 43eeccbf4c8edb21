package flyapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// appServer accepts an app create and answers reads of the app with its reads in order (the last
// repeated), recording every request.
type appServer struct {
	t      *testing.T
	create step
	reads  []step
	// onRead, when set, runs before each read is answered.
	onRead func(n int)

	mu        sync.Mutex
	creates   int
	readCount int
	query     string
}

func (s *appServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body) // no answer depends on it
	s.mu.Lock()
	var st step
	n := 0
	if r.Method == http.MethodPost {
		s.creates++
		s.query = r.URL.RawQuery
		st = s.create
	} else {
		n = s.readCount
		st = s.reads[min(s.readCount, len(s.reads)-1)]
		s.readCount++
	}
	s.mu.Unlock()
	if r.Method != http.MethodPost && s.onRead != nil {
		s.onRead(n)
	}
	if st.drop {
		dropConnection(s.t, w)
		return
	}
	w.WriteHeader(st.status)
	_, _ = io.WriteString(w, st.body) // a failed write fails the client's call
}

// TestCreateAppWaits: Fly creates apps asynchronously, so CreateApp asks with wait=true and then
// reads the app until it is readable, retrying 404 and 401 on the client's clock, for up to
// CreateAppWait; past that, or when the caller gives up, it says the app was created but is not
// visible yet.
func TestCreateAppWaits(t *testing.T) {
	created := step{status: 201, body: `{"id":"z4k69dxd8r31p5mx","created_at":1708631799000}`}
	readable := step{status: 200, body: `{"id":"z4k69dxd8r31p5mx","name":"my-app","organization":{"slug":"personal"},"network":"my-net","status":"pending"}`}
	missing := step{status: 404, body: `{"error":"app not found"}`}
	unauthorized := step{status: 401, body: `{"error":"unauthorized"}`}
	tests := []struct {
		name      string
		create    step
		reads     []step
		wait      time.Duration // Options.CreateAppWait
		cancelAt  int           // cancel the caller's context before this read (0: never)
		wantReads int           // -1: more than one, bounded by the wait
		wantErr   func(error) bool
	}{
		{name: "readable at once", create: created, reads: []step{readable}, wantReads: 1},
		{name: "404 while propagating", create: created, reads: []step{missing, missing, missing, readable}, wantReads: 4},
		{name: "401 while propagating", create: created, reads: []step{unauthorized, missing, readable}, wantReads: 3},
		{name: "a 503 on a read is waited out", create: created, reads: []step{fail503, fail503, fail503, fail503, readable}, wantReads: 5},
		{name: "never readable: not visible after the wait", create: created, reads: []step{missing}, wantReads: -1, wantErr: IsAppNotVisible},
		{name: "a shorter wait", create: created, reads: []step{missing}, wait: 5 * time.Second, wantReads: -1, wantErr: IsAppNotVisible},
		{name: "403: not visible, not waited for", create: created, reads: []step{{status: 403, body: `{"error":"forbidden"}`}}, wantReads: 1, wantErr: IsAppNotVisible},
		{name: "no waiting", create: created, reads: []step{missing}, wait: -1, wantReads: 0},
		{
			name: "caller gives up while waiting", create: created, reads: []step{missing}, cancelAt: 2, wantReads: 2,
			wantErr: func(err error) bool { return IsAppNotVisible(err) && errors.Is(err, context.Canceled) },
		},
		{name: "create refused", create: step{status: 422, body: `{"error":"Validation failed: Name has already been taken","status":"name_taken"}`}, reads: []step{readable}, wantErr: IsNameTaken},
		{name: "create answered 408", create: step{status: 408, body: `{"error":"timeout"}`}, reads: []step{readable}, wantErr: IsOutcomeUnknown},
		{name: "create lost its answer", create: dropped, reads: []step{readable}, wantErr: IsOutcomeUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			srv := &appServer{t: t, create: tt.create, reads: tt.reads}
			if tt.cancelAt > 0 {
				srv.onRead = func(n int) {
					if n+1 == tt.cancelAt {
						cancel()
					}
				}
			}
			c, clock := newTestClient(t, srv, func(o *Options) {
				o.Limiter = NewLimiter(NoLimits())
				o.CreateAppWait = tt.wait
			})
			app, err := c.CreateApp(ctx, "personal", "my-app", "my-net")
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("CreateApp: %v", err)
			case tt.wantErr != nil && !tt.wantErr(err):
				t.Fatalf("CreateApp error = %v, not the expected kind", err)
			case tt.wantErr == nil && (app.ID != "z4k69dxd8r31p5mx" || app.Name != "my-app" || app.CreatedAt.IsZero()):
				t.Errorf("CreateApp = %+v", app)
			}
			if IsAppNotVisible(err) && (IsNotFound(err) || IsOutcomeUnknown(err)) {
				t.Errorf("error %v: an app created but not yet visible is neither missing nor of unknown outcome", err)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if srv.creates != 1 {
				t.Errorf("%d creates, want 1", srv.creates)
			}
			if srv.query != "wait=true" {
				t.Errorf("create sent with query %q, want wait=true", srv.query)
			}
			limit := tt.wait
			if limit == 0 {
				limit = time.Minute
			}
			switch {
			case tt.wantReads >= 0 && srv.readCount != tt.wantReads:
				t.Errorf("%d reads of the app, want %d", srv.readCount, tt.wantReads)
			case tt.wantReads < 0 && srv.readCount < 3:
				t.Errorf("%d reads of the app: the wait gave up early", srv.readCount)
			case tt.wantReads < 0 && clock.Slept() != limit:
				// The wait sleeps on the client's clock until the last read, made at the deadline.
				t.Errorf("waited %v on the client's clock, want exactly the %v allowed", clock.Slept(), limit)
			}
		})
	}
}
