package flysim

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// secretNameRE: secrets become environment variables, so names follow env var rules.
var secretNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// digest identifies a secret's value without revealing it: a truncated SHA-256 of the value.
func digest(value string) string {
	sum := sha256.Sum256([]byte(value))
	return hex.EncodeToString(sum[:8])
}

// secretView is AppSecret (§3). value only appears with show_secrets.
type secretView struct {
	Name      string  `json:"name"`
	Digest    string  `json:"digest"`
	Value     *string `json:"value,omitempty"`
	CreatedAt string  `json:"created_at"`
	UpdatedAt string  `json:"updated_at"`
}

func viewSecret(sec *secret, show bool) secretView {
	v := secretView{Name: sec.name, Digest: digest(sec.value), CreatedAt: rfc3339(sec.createdAt), UpdatedAt: rfc3339(sec.updatedAt)}
	if show {
		value := sec.value
		v.Value = &value
	}
	return v
}

func sortedSecrets(secrets map[string]*secret, show bool) []secretView {
	names := make([]string, 0, len(secrets))
	for name := range secrets {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]secretView, 0, len(names))
	for _, name := range names {
		out = append(out, viewSecret(secrets[name], show))
	}
	return out
}

// secretsReadOptions parses show_secrets and the minimum-version filter, which S calls min_version and
// fly-go sends as version (§10); both are accepted.
func (req *request) secretsReadOptions() (show bool, minVersion *uint64, err *apiError) {
	if show, err = req.boolQuery("show_secrets"); err != nil {
		return false, nil, err
	}
	q := req.r.URL.Query()
	for _, key := range []string{"min_version", "version"} {
		if v := q.Get(key); v != "" {
			n, perr := strconv.ParseUint(v, 10, 64)
			if perr != nil {
				return false, nil, newAPIError(http.StatusBadRequest, "invalid_argument: %s must be a non-negative integer", key)
			}
			if minVersion == nil || n > *minVersion {
				minVersion = &n
			}
		}
	}
	return show, minVersion, nil
}

// checkSecretsVersion: the version filter asks to read secrets at least that new. A version above the
// app's last write is one that does not exist yet: a 412, like min_secrets_version on machine create.
// One at or below it is served at once, even while the profile's SecretsLag hides that write from
// plain reads (readableSecrets).
func checkSecretsVersion(a *app, minVersion *uint64) *apiError {
	if minVersion != nil && *minVersion > a.secretsVer {
		return newAPIError(http.StatusPreconditionFailed,
			"failed_precondition: app secrets are at version %d, older than the requested version %d", a.secretsVer, *minVersion)
	}
	return nil
}

func (s *Server) listSecrets(req *request) reply {
	show, minVersion, err := req.secretsReadOptions()
	if err != nil {
		return errReply(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.appFor(req)
	if err != nil {
		return errReply(err)
	}
	if err := checkSecretsVersion(a, minVersion); err != nil {
		return errReply(err)
	}
	secrets, _ := s.readableSecrets(a, minVersion)
	return jsonReply(http.StatusOK, map[string]any{"secrets": sortedSecrets(secrets, show)})
}

// setSecrets sets and unsets (null) several secrets at once. Every accepted request is one new app
// secrets version.
func (s *Server) setSecrets(req *request) reply {
	var body struct {
		Values map[string]*string `json:"values"`
	}
	if err := req.decodeBody(&body, false); err != nil {
		return errReply(err)
	}
	if len(body.Values) == 0 {
		return errorf(http.StatusBadRequest, "invalid_argument: values must name at least one secret")
	}
	for name := range body.Values {
		if !secretNameRE.MatchString(name) {
			return errorf(http.StatusBadRequest, "invalid_argument: secret name %q must be letters, digits and underscores", name)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.appFor(req)
	if err != nil {
		return errReply(err)
	}
	s.writeSecrets(a, func() {
		a.secretsVer++
		for name, value := range body.Values {
			if value == nil {
				delete(a.secrets, name)
				continue
			}
			s.putSecret(a, name, *value)
		}
	})
	return jsonReply(http.StatusOK, map[string]any{"secrets": sortedSecrets(a.secrets, false), "version": a.secretsVer})
}

// putSecret writes one secret at the app's current secrets version. Callers hold s.mu.
func (s *Server) putSecret(a *app, name, value string) *secret {
	now := s.now()
	sec := a.secrets[name]
	if sec == nil {
		sec = &secret{name: name, createdAt: now}
		a.secrets[name] = sec
	}
	sec.value, sec.updatedAt, sec.version = value, now, a.secretsVer
	return sec
}

func (s *Server) getSecret(req *request) reply {
	name := req.r.PathValue("name")
	show, minVersion, err := req.secretsReadOptions()
	if err != nil {
		return errReply(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.appFor(req)
	if err != nil {
		return errReply(err)
	}
	if err := checkSecretsVersion(a, minVersion); err != nil {
		return errReply(err)
	}
	secrets, _ := s.readableSecrets(a, minVersion)
	sec := secrets[name]
	if sec == nil {
		return errorf(http.StatusNotFound, "secret not found")
	}
	return jsonReply(http.StatusOK, viewSecret(sec, show))
}

func (s *Server) setSecret(req *request) reply {
	name := req.r.PathValue("name")
	if !secretNameRE.MatchString(name) {
		return errorf(http.StatusBadRequest, "invalid_argument: secret name must be letters, digits and underscores")
	}
	var body struct {
		Value *string `json:"value"`
	}
	if err := req.decodeBody(&body, false); err != nil {
		return errReply(err)
	}
	if body.Value == nil {
		return errorf(http.StatusBadRequest, "invalid_argument: value is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.appFor(req)
	if err != nil {
		return errReply(err)
	}
	var sec *secret
	s.writeSecrets(a, func() {
		a.secretsVer++
		sec = s.putSecret(a, name, *body.Value)
	})
	type setSecretResponse struct {
		secretView
		Version uint64 `json:"version"`
	}
	return jsonReply(http.StatusCreated, setSecretResponse{secretView: viewSecret(sec, false), Version: a.secretsVer})
}

func (s *Server) deleteSecret(req *request) reply {
	name := req.r.PathValue("name")
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.appFor(req)
	if err != nil {
		return errReply(err)
	}
	if a.secrets[name] == nil {
		return errorf(http.StatusNotFound, "secret not found")
	}
	s.writeSecrets(a, func() {
		delete(a.secrets, name)
		a.secretsVer++
	})
	return jsonReply(http.StatusOK, map[string]uint64{"version": a.secretsVer})
}

// bootSecrets is what a new machine version gets: the app secrets booting machines see (the profile's
// SecretsLag may hide the latest writes), at least minVersion when given (§3, §4.2: the caller checked
// it is not above the last write), none with skip. Callers hold s.mu.
func (s *Server) bootSecrets(a *app, skip bool, minVersion *uint64) (values map[string]string, version uint64) {
	secrets, version := s.readableSecrets(a, minVersion)
	if skip {
		return nil, version
	}
	values = make(map[string]string, len(secrets))
	for name, sec := range secrets {
		values[name] = sec.value
	}
	return values, version
}

// secretsState is the app's secrets as of one write.
type secretsState struct {
	version   uint64
	visibleAt time.Time
	values    map[string]*secret
}

func cloneSecrets(secrets map[string]*secret) map[string]*secret {
	out := make(map[string]*secret, len(secrets))
	for name, sec := range secrets {
		cp := *sec
		out[name] = &cp
	}
	return out
}

// writeSecrets runs write, which changes a.secrets and bumps a.secretsVer. Under the profile's
// SecretsLag the result reaches reads and booting machines only after a drawn lag, in write order
// (§11 "Secrets"): until then they see the state before. Callers hold s.mu.
func (s *Server) writeSecrets(a *app, write func()) {
	if s.profile.SecretsLag.isZero() {
		write()
		return
	}
	s.settleSecrets(a)
	if len(a.secretsPending) == 0 {
		a.secretsVisible = secretsState{version: a.secretsVer, values: cloneSecrets(a.secrets)}
	}
	write()
	at := s.now().Add(s.profile.draw(a.rng, s.profile.SecretsLag))
	if n := len(a.secretsPending); n > 0 && at.Before(a.secretsPending[n-1].visibleAt) {
		at = a.secretsPending[n-1].visibleAt
	}
	a.secretsPending = append(a.secretsPending, secretsState{version: a.secretsVer, visibleAt: at, values: cloneSecrets(a.secrets)})
}

// settleSecrets makes the pending writes whose lag has passed (by Options.Now) visible. Callers hold s.mu.
func (s *Server) settleSecrets(a *app) {
	now := s.now()
	for len(a.secretsPending) > 0 && !now.Before(a.secretsPending[0].visibleAt) {
		a.secretsVisible = a.secretsPending[0]
		a.secretsPending = a.secretsPending[1:]
	}
}

// readableSecrets is what a read (or a booting machine) sees: the last visible write, or the last
// write when minVersion asks for one not visible yet (flyctl sends the version it wrote, §3, §10).
// Callers hold s.mu.
func (s *Server) readableSecrets(a *app, minVersion *uint64) (map[string]*secret, uint64) {
	s.settleSecrets(a)
	if len(a.secretsPending) == 0 || (minVersion != nil && *minVersion > a.secretsVisible.version) {
		return a.secrets, a.secretsVer
	}
	return a.secretsVisible.values, a.secretsVisible.version
}
