package flysim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Machine configs are kept as the JSON object the client sent (a map with json.Number numbers, so
// nothing is rounded or dropped), unless the profile's TypedConfig drops the keys Fly's typed config
// does not know. Validation walks only the fields Fly is known to check (§6).
// Convention: a value of the wrong JSON type is a 400 (Fly's typed decoder fails); a well-typed value
// Fly would not accept is a 422.

func configTypeError(field, expected string) *apiError {
	return newAPIError(http.StatusBadRequest, "invalid_argument: config.%s: expected %s", field, expected)
}

func configInvalid(field, format string, args ...any) *apiError {
	return newAPIError(http.StatusUnprocessableEntity, "invalid_argument: config.%s: %s", field, fmt.Sprintf(format, args...))
}

// parseConfig decodes, validates and normalises a machine config, returning its normalised encoding;
// typed (the profile's TypedConfig) drops the keys Fly's typed config does not know (configschema.go).
func parseConfig(raw json.RawMessage, typed bool) (json.RawMessage, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, newAPIError(http.StatusUnprocessableEntity, "invalid_argument: config is required")
	}
	var v any
	if err := decodeJSON(raw, &v); err != nil {
		return nil, err
	}
	cfg, ok := v.(map[string]any)
	if !ok {
		return nil, newAPIError(http.StatusBadRequest, "invalid_argument: config: expected object")
	}
	if err := validateConfig(cfg); err != nil {
		return nil, err
	}
	normalizeConfig(cfg)
	if typed {
		pruneConfig(cfg)
	}
	return encodeConfig(cfg)
}

func encodeConfig(cfg map[string]any) (json.RawMessage, *apiError) {
	enc, err := marshalJSON(cfg)
	if err != nil {
		return nil, newAPIError(http.StatusBadRequest, "invalid_argument: config: not encodable")
	}
	return enc, nil
}

// normalizeConfig applies what Fly does to stored configs: autostop is answered as false/true for
// "off"/"stop" and "suspend" for suspend (§6), whatever form was written.
func normalizeConfig(cfg map[string]any) {
	services, _ := cfg["services"].([]any)
	for _, sv := range services {
		svc, _ := sv.(map[string]any)
		switch svc["autostop"] {
		case "off":
			svc["autostop"] = false
		case "stop":
			svc["autostop"] = true
		}
	}
}

func validateConfig(cfg map[string]any) *apiError {
	image, present, err := optString(cfg, "image", "image")
	if err != nil {
		return err
	}
	if !present || image == "" {
		return configInvalid("image", "required")
	}
	if !validImageRef(image) {
		return configInvalid("image", "%q is not a valid image reference", image)
	}
	checks := []func(map[string]any) *apiError{
		validateGuest, validateServices, validateChecks, validateRestart, validateStopConfig,
		validateInit, validateMounts, validateFiles, validateScalars,
	}
	for _, check := range checks {
		if err := check(cfg); err != nil {
			return err
		}
	}
	if err := stringMap(cfg, "env", "env"); err != nil {
		return err
	}
	return stringMap(cfg, "metadata", "metadata")
}

// CPU counts and per-CPU memory bounds (MB) of §6.
var (
	sharedCPUCounts      = []int64{1, 2, 4, 6, 8}
	performanceCPUCounts = []int64{1, 2, 4, 6, 8, 10, 12, 14, 16}
)

const (
	sharedMinMBPerCPU      = 256
	sharedMaxMBPerCPU      = 2048
	performanceMinMBPerCPU = 2048
	performanceMaxMBPerCPU = 8192
	memoryStepMB           = 256
)

var sizePresets = func() map[string]bool {
	p := map[string]bool{"a100-40gb": true, "a100-80gb": true, "l40s": true, "a10": true}
	for _, n := range sharedCPUCounts {
		p[fmt.Sprintf("shared-cpu-%dx", n)] = true
	}
	for _, n := range performanceCPUCounts {
		p[fmt.Sprintf("performance-%dx", n)] = true
	}
	return p
}()

func validateGuest(cfg map[string]any) *apiError {
	size, hasSize, err := optString(cfg, "size", "size")
	if err != nil {
		return err
	}
	if hasSize && size != "" && !sizePresets[size] {
		return configInvalid("size", "unknown size %q", size)
	}
	guest, hasGuest, err := optObject(cfg, "guest", "guest")
	if err != nil || !hasGuest {
		return err
	}
	if hasSize && size != "" {
		return configInvalid("size", "size and guest cannot both be set")
	}
	kind, _, err := optString(guest, "cpu_kind", "guest.cpu_kind")
	if err != nil {
		return err
	}
	counts, minPer, maxPer := sharedCPUCounts, int64(sharedMinMBPerCPU), int64(sharedMaxMBPerCPU)
	switch kind {
	case "", "shared":
		kind = "shared"
	case "performance":
		counts, minPer, maxPer = performanceCPUCounts, performanceMinMBPerCPU, performanceMaxMBPerCPU
	default:
		return configInvalid("guest.cpu_kind", "%q is not one of shared, performance", kind)
	}
	cpus, hasCPUs, err := optInt(guest, "cpus", "guest.cpus")
	if err != nil {
		return err
	}
	if !hasCPUs {
		cpus = 1
	}
	if !slices.Contains(counts, cpus) {
		return configInvalid("guest.cpus", "%d is not a valid number of %s CPUs (%s)", cpus, kind, joinInts(counts))
	}
	mem, hasMem, err := optInt(guest, "memory_mb", "guest.memory_mb")
	if err != nil {
		return err
	}
	if hasMem {
		switch {
		case mem <= 0 || mem%memoryStepMB != 0:
			return configInvalid("guest.memory_mb", "%d is not a positive multiple of %d", mem, memoryStepMB)
		case mem < minPer*cpus:
			return configInvalid("guest.memory_mb", "%d MB is below the minimum of %d MB for %d %s CPU(s)", mem, minPer*cpus, cpus, kind)
		case mem > maxPer*cpus:
			return configInvalid("guest.memory_mb", "%d MB is above the maximum of %d MB for %d %s CPU(s)", mem, maxPer*cpus, cpus, kind)
		}
	}
	for _, field := range []string{"gpus", "max_memory_mb"} {
		n, has, err := optInt(guest, field, "guest."+field)
		if err != nil {
			return err
		}
		if has && n < 0 {
			return configInvalid("guest."+field, "must not be negative")
		}
	}
	return stringList(guest, "kernel_args", "guest.kernel_args")
}

func joinInts(ns []int64) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = fmt.Sprint(n)
	}
	return strings.Join(parts, ", ")
}

func validateServices(cfg map[string]any) *apiError {
	services, has, err := optArray(cfg, "services", "services")
	if err != nil || !has {
		return err
	}
	for i, sv := range services {
		field := fmt.Sprintf("services[%d]", i)
		svc, ok := sv.(map[string]any)
		if !ok {
			return configTypeError(field, "object")
		}
		proto, _, err := optString(svc, "protocol", field+".protocol")
		if err != nil {
			return err
		}
		if proto != "tcp" && proto != "udp" {
			return configInvalid(field+".protocol", "required, one of tcp, udp")
		}
		port, hasPort, err := optInt(svc, "internal_port", field+".internal_port")
		if err != nil {
			return err
		}
		if !hasPort {
			return configInvalid(field+".internal_port", "required")
		}
		if port < 1 || port > 65535 {
			return configInvalid(field+".internal_port", "%d is not a port number", port)
		}
		if err := optBool(svc, "autostart", field+".autostart"); err != nil {
			return err
		}
		if err := validateAutostop(svc, field+".autostop"); err != nil {
			return err
		}
		if n, has, err := optInt(svc, "min_machines_running", field+".min_machines_running"); err != nil {
			return err
		} else if has && n < 0 {
			return configInvalid(field+".min_machines_running", "must not be negative")
		}
		if err := validatePorts(svc, field); err != nil {
			return err
		}
		if err := validateConcurrency(svc, field); err != nil {
			return err
		}
		checks, has, err := optArray(svc, "checks", field+".checks")
		if err != nil {
			return err
		}
		if has {
			for j, c := range checks {
				if err := validateCheck(c, fmt.Sprintf("%s.checks[%d]", field, j)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// validateAutostop accepts a bool or one of "off", "stop", "suspend" (§6).
func validateAutostop(svc map[string]any, field string) *apiError {
	switch v := svc["autostop"].(type) {
	case nil, bool:
		return nil
	case string:
		if v == "off" || v == "stop" || v == "suspend" {
			return nil
		}
		return configInvalid(field, "%q is not one of off, stop, suspend (or a boolean)", v)
	default:
		return configTypeError(field, `a boolean or one of "off", "stop", "suspend"`)
	}
}

func validatePorts(svc map[string]any, field string) *apiError {
	ports, has, err := optArray(svc, "ports", field+".ports")
	if err != nil || !has {
		return err
	}
	for i, pv := range ports {
		pf := fmt.Sprintf("%s.ports[%d]", field, i)
		p, ok := pv.(map[string]any)
		if !ok {
			return configTypeError(pf, "object")
		}
		port, hasPort, err := optInt(p, "port", pf+".port")
		if err != nil {
			return err
		}
		start, hasStart, err := optInt(p, "start_port", pf+".start_port")
		if err != nil {
			return err
		}
		end, hasEnd, err := optInt(p, "end_port", pf+".end_port")
		if err != nil {
			return err
		}
		hasRange := hasStart && hasEnd
		switch {
		case hasPort && (port < 1 || port > 65535):
			return configInvalid(pf+".port", "%d is not a port number", port)
		case !hasPort && !hasRange:
			return configInvalid(pf, "needs port, or start_port and end_port")
		case hasRange && (start < 1 || end > 65535 || start > end):
			return configInvalid(pf, "start_port %d to end_port %d is not a port range", start, end)
		}
		if err := stringList(p, "handlers", pf+".handlers"); err != nil {
			return err
		}
		if err := optBool(p, "force_https", pf+".force_https"); err != nil {
			return err
		}
	}
	return nil
}

func validateConcurrency(svc map[string]any, field string) *apiError {
	conc, has, err := optObject(svc, "concurrency", field+".concurrency")
	if err != nil || !has {
		return err
	}
	typ, _, err := optString(conc, "type", field+".concurrency.type")
	if err != nil {
		return err
	}
	if typ != "" && typ != "connections" && typ != "requests" {
		return configInvalid(field+".concurrency.type", "%q is not one of connections, requests", typ)
	}
	for _, k := range []string{"soft_limit", "hard_limit"} {
		n, has, err := optInt(conc, k, field+".concurrency."+k)
		if err != nil {
			return err
		}
		if has && n < 0 {
			return configInvalid(field+".concurrency."+k, "must not be negative")
		}
	}
	return nil
}

func validateChecks(cfg map[string]any) *apiError {
	checks, has, err := optObject(cfg, "checks", "checks")
	if err != nil || !has {
		return err
	}
	for name, c := range checks {
		if err := validateCheck(c, "checks."+name); err != nil {
			return err
		}
	}
	return nil
}

func validateCheck(v any, field string) *apiError {
	c, ok := v.(map[string]any)
	if !ok {
		return configTypeError(field, "object")
	}
	enums := map[string][]string{
		"type":     {"tcp", "http"},
		"kind":     {"informational", "readiness"},
		"protocol": {"http", "https"},
	}
	for key, allowed := range enums {
		val, has, err := optString(c, key, field+"."+key)
		if err != nil {
			return err
		}
		if has && val != "" && !slices.Contains(allowed, val) {
			return configInvalid(field+"."+key, "%q is not one of %s", val, strings.Join(allowed, ", "))
		}
	}
	if port, has, err := optInt(c, "port", field+".port"); err != nil {
		return err
	} else if has && (port < 1 || port > 65535) {
		return configInvalid(field+".port", "%d is not a port number", port)
	}
	for _, k := range []string{"interval", "timeout", "grace_period"} {
		if err := optDuration(c, k, field+"."+k); err != nil {
			return err
		}
	}
	return nil
}

func validateRestart(cfg map[string]any) *apiError {
	r, has, err := optObject(cfg, "restart", "restart")
	if err != nil || !has {
		return err
	}
	policy, _, err := optString(r, "policy", "restart.policy")
	if err != nil {
		return err
	}
	if policy != "" && policy != "no" && policy != "always" && policy != "on-failure" {
		return configInvalid("restart.policy", "%q is not one of no, always, on-failure", policy)
	}
	if n, has, err := optInt(r, "max_retries", "restart.max_retries"); err != nil {
		return err
	} else if has && n < 0 {
		return configInvalid("restart.max_retries", "must not be negative")
	}
	return nil
}

func validateStopConfig(cfg map[string]any) *apiError {
	sc, has, err := optObject(cfg, "stop_config", "stop_config")
	if err != nil || !has {
		return err
	}
	sig, has, err := optString(sc, "signal", "stop_config.signal")
	if err != nil {
		return err
	}
	if has && sig != "" && !stopSignals[sig] {
		return configInvalid("stop_config.signal", "unknown signal %q", sig)
	}
	return optDuration(sc, "timeout", "stop_config.timeout")
}

func validateInit(cfg map[string]any) *apiError {
	in, has, err := optObject(cfg, "init", "init")
	if err != nil || !has {
		return err
	}
	for _, k := range []string{"exec", "entrypoint", "cmd", "kernel_args"} {
		if err := stringList(in, k, "init."+k); err != nil {
			return err
		}
	}
	if err := optBool(in, "tty", "init.tty"); err != nil {
		return err
	}
	if n, has, err := optInt(in, "swap_size_mb", "init.swap_size_mb"); err != nil {
		return err
	} else if has && n < 0 {
		return configInvalid("init.swap_size_mb", "must not be negative")
	}
	return nil
}

func validateMounts(cfg map[string]any) *apiError {
	mounts, has, err := optArray(cfg, "mounts", "mounts")
	if err != nil || !has {
		return err
	}
	for i, mv := range mounts {
		field := fmt.Sprintf("mounts[%d]", i)
		m, ok := mv.(map[string]any)
		if !ok {
			return configTypeError(field, "object")
		}
		path, _, err := optString(m, "path", field+".path")
		if err != nil {
			return err
		}
		if !strings.HasPrefix(path, "/") {
			return configInvalid(field+".path", "required, an absolute path")
		}
	}
	return nil
}

func validateFiles(cfg map[string]any) *apiError {
	files, has, err := optArray(cfg, "files", "files")
	if err != nil || !has {
		return err
	}
	for i, fv := range files {
		field := fmt.Sprintf("files[%d]", i)
		f, ok := fv.(map[string]any)
		if !ok {
			return configTypeError(field, "object")
		}
		path, _, err := optString(f, "guest_path", field+".guest_path")
		if err != nil {
			return err
		}
		if !strings.HasPrefix(path, "/") {
			return configInvalid(field+".guest_path", "required, an absolute path")
		}
	}
	return nil
}

func validateScalars(cfg map[string]any) *apiError {
	if err := optBool(cfg, "auto_destroy", "auto_destroy"); err != nil {
		return err
	}
	schedule, has, err := optString(cfg, "schedule", "schedule")
	if err != nil {
		return err
	}
	if has && schedule != "" && !slices.Contains([]string{"hourly", "daily", "weekly", "monthly"}, schedule) {
		return configInvalid("schedule", "%q is not one of hourly, daily, weekly, monthly", schedule)
	}
	return nil
}
