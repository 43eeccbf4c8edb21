package flysim

import (
	"net/http"
	"strconv"
	"time"
)

// leaseNonceHeader carries the lease nonce on refresh, release and guarded mutations.
const leaseNonceHeader = "fly-machine-lease-nonce"

// activeLease returns m's lease unless it expired (by Options.Now). Callers hold s.mu.
func (s *Server) activeLease(m *machine) *lease {
	if m.lease != nil && s.now().Before(m.lease.expiresAt) {
		return m.lease
	}
	return nil
}

// newLease gives m a fresh lease held by owner. Callers hold s.mu.
func (s *Server) newLease(m *machine, owner, description string, ttl time.Duration) *lease {
	m.lease = &lease{
		nonce:       s.ids.nonce(),
		owner:       owner,
		description: description,
		expiresAt:   s.now().Add(ttl),
		version:     m.current().id,
	}
	return m.lease
}

// heldMessage is Fly's text for a lease held by someone else (§4.6).
func heldMessage(m *machine, l *lease) string {
	return "machine ID " + m.id + " lease currently held by " + l.owner + ", expires at " +
		l.expiresAt.UTC().Format("2006-01-02 15:04:05 -0700 MST")
}

// leaseGuard refuses a mutation of a leased machine without the lease's nonce. Stricter: the sheet only
// infers the status (409) and the guarded actions (update, start, stop, restart, suspend, destroy,
// cordon, uncordon); the emulator enforces exactly that. A nonce sent for a machine without an active
// lease is ignored: the lease it named has expired and nothing is guarded any more. Callers hold s.mu.
func (s *Server) leaseGuard(m *machine, req *request) *apiError {
	l := s.activeLease(m)
	if l == nil || req.r.Header.Get(leaseNonceHeader) == l.nonce {
		return nil
	}
	return newAPIError(http.StatusConflict, "%s", heldMessage(m, l))
}

// leaseData is the inner object of the lease envelope (§4.6).
type leaseData struct {
	Nonce       string `json:"nonce"`
	ExpiresAt   int64  `json:"expires_at"` // epoch seconds
	Owner       string `json:"owner"`
	Description string `json:"description"`
	Version     string `json:"version"`
}

type leaseEnvelope struct {
	Status string    `json:"status"`
	Data   leaseData `json:"data"`
}

func leaseReply(status int, l *lease) reply {
	return jsonReply(status, leaseEnvelope{Status: "success", Data: leaseData{
		Nonce: l.nonce, ExpiresAt: l.expiresAt.Unix(), Owner: l.owner, Description: l.description, Version: l.version,
	}})
}

// acquireLease acquires, or with the current nonce in the header refreshes, the machine lease. The ttl
// (seconds) comes from the body (docs) or the query (fly-go); default DefaultLeaseTTL.
func (s *Server) acquireLease(req *request) reply {
	var body struct {
		TTL         *int64 `json:"ttl"`
		Description string `json:"description"`
	}
	if err := req.decodeBody(&body, true); err != nil {
		return leaseErrorf(err.httpStatus, "invalid", "%s", err.message)
	}
	ttl := DefaultLeaseTTL
	if body.TTL != nil {
		if *body.TTL <= 0 {
			return leaseErrorf(http.StatusBadRequest, "invalid", "ttl must be a positive number of seconds")
		}
		ttl = time.Duration(*body.TTL) * time.Second
	} else if q := req.r.URL.Query().Get("ttl"); q != "" {
		n, err := strconv.ParseInt(q, 10, 64)
		if err != nil || n <= 0 {
			return leaseErrorf(http.StatusBadRequest, "invalid", "ttl must be a positive number of seconds")
		}
		ttl = time.Duration(n) * time.Second
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.machineFor(req)
	if err != nil {
		return errReply(err)
	}
	if err := notDestroyed(m, "lease"); err != nil {
		return errReply(err)
	}
	if l := s.activeLease(m); l != nil {
		if nonce := req.r.Header.Get(leaseNonceHeader); nonce == "" || nonce != l.nonce {
			return leaseErrorf(http.StatusConflict, "invalid", "%s", heldMessage(m, l))
		}
		// Refresh: the holder extends its lease by ttl from now.
		l.expiresAt = s.now().Add(ttl)
		if body.Description != "" {
			l.description = body.Description
		}
		l.version = m.current().id
		return leaseReply(http.StatusCreated, l)
	}
	return leaseReply(http.StatusCreated, s.newLease(m, req.owner, body.Description, ttl))
}

func (s *Server) getLease(req *request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.machineFor(req)
	if err != nil {
		return errReply(err)
	}
	l := s.activeLease(m)
	if l == nil {
		return leaseErrorf(http.StatusNotFound, "not_found", "lease not found")
	}
	return leaseReply(http.StatusOK, l)
}

// releaseLease needs the holder's nonce: 400 when it is missing or wrong, 404 when no lease is held.
func (s *Server) releaseLease(req *request) reply {
	nonce := req.r.Header.Get(leaseNonceHeader)
	if nonce == "" {
		return leaseErrorf(http.StatusBadRequest, "invalid", "the %s header is required to release a lease", leaseNonceHeader)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.machineFor(req)
	if err != nil {
		return errReply(err)
	}
	l := s.activeLease(m)
	if l == nil {
		return leaseErrorf(http.StatusNotFound, "not_found", "lease not found")
	}
	if nonce != l.nonce {
		return leaseErrorf(http.StatusBadRequest, "invalid", "lease nonce does not match the current lease")
	}
	m.lease = nil
	return jsonReply(http.StatusOK, map[string]any{"status": "success", "data": okBody})
}
