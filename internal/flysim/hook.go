package flysim

// CallPoint is one of the two moments of an API call that Options.CallHook sees: before its handler
// acts (Committed false) and after the handler has made its change, before the answer is written
// (Committed true). A crash test kills a process at either point to land a crash before or after a
// change Fly made.
//
// Only calls that reach their handler are seen: a call refused by authentication, by the rate limiter
// or by a fault failing it before it acts changes nothing and gets no CallPoint (its Seq is skipped).
// The Committed point is seen whatever the handler answered (Status says what); a fault or the
// profile may still replace that answer afterwards, by a failure or a dropped connection.
type CallPoint struct {
	// Seq numbers the calls of one Server that matched an endpoint, from 1, in the order they
	// arrived (calls that never reach their handler leave gaps); both points of a call carry it.
	Seq uint64
	// Action is the call's action name, as in the call log (one of Actions).
	Action string
	Method string
	Path   string
	Org    string // the org of the token
	Caller string // the token's identity, as in Call.Caller
	// App is the app named by the path, or by the body for create_app (known at the Committed point).
	App string
	// Machine is the machine named by the path, or the machine created by create_machine (known at
	// the Committed point).
	Machine string
	// Committed is false before the handler acts, true after.
	Committed bool
	// Status is the status the handler answered; 0 before it acts.
	Status int
}

// callHook calls Options.CallHook, if set, without holding any lock of the Server, so the hook may
// use the Server's inspection methods.
func (s *Server) callHook(p CallPoint) {
	if s.opts.CallHook != nil {
		s.opts.CallHook(p)
	}
}
