package flyapi

// Action names: they key the client-side limiter (see Limits.PerAction) and label the metrics. The
// emulator (internal/flysim) keeps its own copy of the list for its call log, fault knobs and rate
// limits, on purpose: it does not import this package, so a mistake here cannot hide a mistake
// there. A test in internal/flysim compares the two lists.
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

// Actions returns every action name (each Action… constant once), in a new slice.
func Actions() []string {
	return []string{
		ActionCreateApp, ActionGetApp, ActionListApps, ActionDeleteApp,
		ActionListIPs, ActionAssignIP, ActionDeleteIP,
		ActionListSecrets, ActionSetSecrets, ActionGetSecret, ActionSetSecret, ActionDeleteSecret,
		ActionCreateMachine, ActionGetMachine, ActionListMachines, ActionUpdateMachine,
		ActionStartMachine, ActionStopMachine, ActionSuspendMachine, ActionRestartMachine, ActionSignalMachine,
		ActionCordonMachine, ActionUncordonMachine, ActionDestroyMachine, ActionWaitMachine,
		ActionAcquireLease, ActionGetLease, ActionReleaseLease,
		ActionGetMetadata, ActionSetMetadata, ActionDeleteMetadata, ActionPatchMetadata,
	}
}

// readActions are the calls that change nothing on Fly. Every other action has side effects, and
// when one of those fails without a clear answer its outcome is unknown (IsOutcomeUnknown).
var readActions = map[string]bool{
	ActionGetApp: true, ActionListApps: true, ActionListIPs: true, ActionListSecrets: true,
	ActionGetSecret: true, ActionGetMachine: true, ActionListMachines: true, ActionWaitMachine: true,
	ActionGetLease: true, ActionGetMetadata: true,
}

// hasSideEffects reports whether a call may change something on Fly. An action this package does
// not name counts as having side effects: the safe guess.
func hasSideEffects(action string) bool { return !readActions[action] }
