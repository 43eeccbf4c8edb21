package flysim

import (
	"encoding/json"
	"net/http"
)

// Metadata endpoints edit config.metadata of the current version in place (§4.8). Leases do not guard
// them (T's note). Open in the sheet: whether metadata writes create a new version. They do not here, so
// a controller's current_version stays valid across its own label writes (and updated_at moves).

// editMetadata applies edit to the current config's metadata and stores the result. Callers hold s.mu.
func (s *Server) editMetadata(m *machine, edit func(md map[string]any)) *apiError {
	if err := notDestroyed(m, "update metadata of"); err != nil {
		return err
	}
	v := m.current()
	var cfg map[string]any
	if err := decodeJSON(v.config, &cfg); err != nil {
		return err
	}
	md, _ := cfg["metadata"].(map[string]any)
	if md == nil {
		md = map[string]any{}
	}
	edit(md)
	if len(md) == 0 {
		delete(cfg, "metadata")
	} else {
		cfg["metadata"] = md
	}
	enc, err := encodeConfig(cfg)
	if err != nil {
		return err
	}
	v.config = enc
	m.updatedAt = s.now()
	return nil
}

func (s *Server) getMetadata(req *request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.machineFor(req)
	if err != nil {
		return errReply(err)
	}
	return jsonReply(http.StatusOK, configMetadata(m.current().config))
}

func (s *Server) getMetadataKey(req *request) reply {
	key := req.r.PathValue("key")
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.machineFor(req)
	if err != nil {
		return errReply(err)
	}
	value, ok := configMetadata(m.current().config)[key]
	if !ok {
		return errorf(http.StatusNotFound, "metadata key not found")
	}
	return jsonReply(http.StatusOK, map[string]string{"value": value})
}

func (s *Server) setMetadataKey(req *request) reply {
	key := req.r.PathValue("key")
	var body struct {
		Value     *string `json:"value"`
		UpdatedAt string  `json:"updated_at"`
	}
	if err := req.decodeBody(&body, false); err != nil {
		return errReply(err)
	}
	if body.Value == nil {
		return errorf(http.StatusBadRequest, "invalid_argument: value is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.machineFor(req)
	if err != nil {
		return errReply(err)
	}
	if err := s.editMetadata(m, func(md map[string]any) { md[key] = *body.Value }); err != nil {
		return errReply(err)
	}
	return emptyReply(http.StatusNoContent)
}

// deleteMetadataKey is idempotent: deleting an absent key is still a 204.
func (s *Server) deleteMetadataKey(req *request) reply {
	key := req.r.PathValue("key")
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.machineFor(req)
	if err != nil {
		return errReply(err)
	}
	if err := s.editMetadata(m, func(md map[string]any) { delete(md, key) }); err != nil {
		return errReply(err)
	}
	return emptyReply(http.StatusNoContent)
}

// patchMetadata changes only the listed keys; null or "" removes a key. A machine_version that is no
// longer the machine's version is a 412.
func (s *Server) patchMetadata(req *request) reply {
	var body struct {
		Metadata       map[string]*string `json:"metadata"`
		MachineVersion string             `json:"machine_version"`
		UpdatedAt      json.RawMessage    `json:"updated_at"`
	}
	if err := req.decodeBody(&body, false); err != nil {
		return errReply(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.machineFor(req)
	if err != nil {
		return errReply(err)
	}
	if body.MachineVersion != "" && body.MachineVersion != m.current().id {
		return errorf(http.StatusPreconditionFailed, "failed_precondition: machine_version %s is not the current version %s",
			body.MachineVersion, m.current().id)
	}
	err = s.editMetadata(m, func(md map[string]any) {
		for k, v := range body.Metadata {
			if v == nil || *v == "" {
				delete(md, k)
			} else {
				md[k] = *v
			}
		}
	})
	if err != nil {
		return errReply(err)
	}
	return emptyReply(http.StatusNoContent)
}
