package flysim

// The typed shape of a machine config: every field Fly's typed config knows, at every level. Under a
// profile with TypedConfig the emulator keeps only these and drops any other key, as a typed decoder
// does (§6, §11 "Typed config"). Source: fly-go machine_types.go (MachineConfig and the types it
// holds, HEAD 22d6e51), plus the few fields only the public OpenAPI copy lists (marked S), as
// docs/fly-api.md §6 transcribes them. A field missing here is dropped under the realistic profile:
// add it here, with its source, when Fly's types grow.

// configSchema is a node of the typed shape: an object with known fields, an object whose keys are
// free (a map), an array, or a leaf (any JSON value, kept whole).
type configSchema struct {
	fields map[string]*configSchema // an object with these fields
	values *configSchema            // a map: every key kept, each value of this shape
	elem   *configSchema            // an array of this shape
}

// leaf is a value kept whole: a scalar, or an array or object Fly's types hold as plain values
// (string lists, the free-form response headers).
var leaf = &configSchema{}

func object(fields map[string]*configSchema) *configSchema { return &configSchema{fields: fields} }
func mapOf(v *configSchema) *configSchema                  { return &configSchema{values: v} }
func arrayOf(e *configSchema) *configSchema                { return &configSchema{elem: e} }

// leaves is an object of leaf fields.
func leaves(names ...string) map[string]*configSchema {
	out := make(map[string]*configSchema, len(names))
	for _, n := range names {
		out[n] = leaf
	}
	return out
}

// with adds fields to an object's field map.
func with(fields map[string]*configSchema, more map[string]*configSchema) map[string]*configSchema {
	for k, v := range more {
		fields[k] = v
	}
	return fields
}

var (
	// MachineSecret, EnvFrom, MachineHTTPHeader, File, MachineRestart, StopConfig.
	secretRefShape  = object(leaves("env_var", "name"))
	envFromShape    = object(leaves("env_var", "field_ref"))
	httpHeaderShape = object(leaves("name", "values"))
	fileShape       = object(leaves("guest_path", "raw_value", "secret_name", "image_config", "mode"))
	restartShape    = object(leaves("policy", "max_retries"))
	stopShape       = object(leaves("timeout", "signal"))

	// MachineCheck (top-level, named) and MachineServiceCheck (the same without kind).
	serviceCheckShape = object(with(leaves("port", "type", "interval", "timeout", "grace_period", "method", "path",
		"protocol", "tls_skip_verify", "tls_server_name"), map[string]*configSchema{"headers": arrayOf(httpHeaderShape)}))
	machineCheckShape = object(with(leaves("kind"), serviceCheckShape.fields))

	// MachinePort with TLSOptions, HTTPOptions (HTTPResponseOptions, ReplayCache) and
	// ProxyProtoOptions (fly_src: S).
	portShape = object(with(leaves("port", "start_port", "end_port", "handlers", "force_https"), map[string]*configSchema{
		"tls_options": object(leaves("alpn", "versions", "default_self_signed")),
		"http_options": object(with(leaves("compress", "h2_backend", "idle_timeout", "headers_read_timeout"), map[string]*configSchema{
			"response":     object(with(leaves("pristine"), map[string]*configSchema{"headers": mapOf(leaf)})),
			"replay_cache": arrayOf(object(leaves("path_prefix", "ttl_seconds", "type", "name", "allow_bypass"))),
		})),
		"proxy_proto_options": object(leaves("version", "fly_src")),
	}))

	// MachineService with MachineServiceConcurrency. The blueprint's service `name` is in neither
	// fly-go nor the OpenAPI copy (§6), so it is not here.
	serviceShape = object(with(leaves("protocol", "internal_port", "autostop", "autostart", "min_machines_running",
		"force_instance_key", "force_instance_description"), map[string]*configSchema{
		"ports":       arrayOf(portShape),
		"checks":      arrayOf(serviceCheckShape),
		"concurrency": object(leaves("type", "hard_limit", "soft_limit")),
	}))

	// ContainerConfig with ContainerHealthcheck (its ContainerHealthcheckType inline) and ContainerMount.
	healthcheckShape = object(with(leaves("name", "interval", "grace_period", "success_threshold", "failure_threshold",
		"timeout", "kind", "unhealthy"), map[string]*configSchema{
		"http": object(with(leaves("port", "method", "path", "scheme", "tls_skip_verify", "tls_server_name"),
			map[string]*configSchema{"headers": arrayOf(httpHeaderShape)})),
		"tcp":  object(leaves("port")),
		"exec": object(leaves("command")),
	}))
	containerShape = object(with(leaves("name", "image", "exec", "entrypoint", "cmd", "user"), map[string]*configSchema{
		"env":          mapOf(leaf),
		"secrets":      arrayOf(secretRefShape),
		"env_from":     arrayOf(envFromShape),
		"files":        arrayOf(fileShape),
		"restart":      restartShape,
		"stop":         stopShape,
		"depends_on":   arrayOf(object(leaves("name", "condition"))),
		"healthchecks": arrayOf(healthcheckShape),
		"mounts":       arrayOf(object(leaves("name", "path"))),
	}))

	// machineConfigShape is MachineConfig.
	machineConfigShape = object(with(leaves("image", "schedule", "auto_destroy", "standbys", "size",
		"disable_machine_autostart"), map[string]*configSchema{
		"env":      mapOf(leaf),
		"metadata": mapOf(leaf),
		"init":     object(leaves("exec", "entrypoint", "cmd", "tty", "swap_size_mb", "kernel_args")),
		// MachineGuest; required_host_features: S.
		"guest": object(leaves("cpu_kind", "cpus", "memory_mb", "max_memory_mb", "gpus", "gpu_kind", "host_dedication_id",
			"persist_rootfs", "kernel_args", "required_host_features")),
		// MachineMount; add_size_percent and min_add_size_gb: S.
		"mounts": arrayOf(object(leaves("encrypted", "path", "size_gb", "volume", "name", "extend_threshold_percent",
			"add_size_gb", "size_gb_limit", "add_size_percent", "min_add_size_gb"))),
		"services": arrayOf(serviceShape),
		"metrics":  object(leaves("port", "path", "https")),
		"checks":   mapOf(machineCheckShape),
		"statics":  arrayOf(object(leaves("guest_path", "url_prefix", "tigris_bucket", "index_document"))),
		"files":    arrayOf(fileShape),
		"restart":  restartShape,
		"dns": object(with(leaves("skip_registration", "nameservers", "searches", "hostname", "hostname_fqdn"), map[string]*configSchema{
			"options":           arrayOf(object(leaves("name", "value"))),
			"dns_forward_rules": arrayOf(object(leaves("basename", "addr"))),
		})),
		"processes": arrayOf(object(with(leaves("exec", "entrypoint", "cmd", "user", "ignore_app_secrets"), map[string]*configSchema{
			"env":      mapOf(leaf),
			"secrets":  arrayOf(secretRefShape),
			"env_from": arrayOf(envFromShape),
		}))),
		"stop_config": stopShape,
		"containers":  arrayOf(containerShape),
		// VolumeConfig, its VolumeResource inline.
		"volumes": arrayOf(object(map[string]*configSchema{
			"name": leaf, "image": leaf, "temp_dir": object(leaves("storage_type", "size_mb")),
		})),
		"rootfs":      object(leaves("persist", "size_gb")),
		"cache_drive": object(leaves("size_mb")),
		"spot":        object(leaves("max_price_fraction")),
	}))
)

// pruneConfig drops, in place, every key of cfg the typed shape does not know, at every level. A
// value of a shape other than the schema's (validation let it through) is kept whole.
func pruneConfig(cfg map[string]any) { prune(cfg, machineConfigShape) }

func prune(v any, sc *configSchema) {
	switch {
	case sc.fields != nil:
		obj, ok := v.(map[string]any)
		if !ok {
			return
		}
		for k, fv := range obj {
			fs, known := sc.fields[k]
			if !known {
				delete(obj, k)
				continue
			}
			prune(fv, fs)
		}
	case sc.values != nil:
		if obj, ok := v.(map[string]any); ok {
			for _, fv := range obj {
				prune(fv, sc.values)
			}
		}
	case sc.elem != nil:
		if arr, ok := v.([]any); ok {
			for _, e := range arr {
				prune(e, sc.elem)
			}
		}
	}
}
