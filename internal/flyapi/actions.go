package flyapi

// Action names, shared with the emulator (internal/flysim): they key the client-side limiter (see
// Limits.PerAction) and label the metrics; the emulator uses the same names in its call log, fault
// knobs and rate limits.
const (
	ActionCreateApp       = "create_app"
	ActionGetApp          = "get_app"
	ActionListApps        = "list_apps"
	ActionDeleteApp       = "delete_app"
	ActionListIPs         = "list_ips"
	ActionAssignIP        = "assign_ip"
	ActionDeleteIP        = "delete_ip"
	ActionListSecrets     = "list_secrets"
	ActionSetSecrets      = "set_secrets"
	ActionGetSecret       = "get_secret"
	ActionSetSecret       = "set_secret"
	ActionDeleteSecret    = "delete_secret"
	ActionCreateMachine   = "create_machine"
	ActionGetMachine      = "get_machine"
	ActionListMachines    = "list_machines"
	ActionUpdateMachine   = "update_machine"
	ActionStartMachine    = "start_machine"
	ActionStopMachine     = "stop_machine"
	ActionSuspendMachine  = "suspend_machine"
	ActionRestartMachine  = "restart_machine"
	ActionSignalMachine   = "signal_machine"
	ActionCordonMachine   = "cordon_machine"
	ActionUncordonMachine = "uncordon_machine"
	ActionDestroyMachine  = "destroy_machine"
	ActionWaitMachine     = "wait_machine"
	ActionAcquireLease    = "acquire_lease" // also refresh
	ActionGetLease        = "get_lease"
	ActionReleaseLease    = "release_lease"
	ActionGetMetadata     = "get_metadata"
	ActionSetMetadata     = "set_metadata"
	ActionDeleteMetadata  = "delete_metadata"
	ActionPatchMetadata   = "patch_metadata"
)
