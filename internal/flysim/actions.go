package flysim

// Action names, used in the call log, as fault keys and as rate-limit bucket names. The client mirrors
// the limiter buckets, so these names are part of the package's contract.
const (
	actCreateApp       = "create_app"
	actGetApp          = "get_app"
	actListApps        = "list_apps"
	actDeleteApp       = "delete_app"
	actListIPs         = "list_ips"
	actAssignIP        = "assign_ip"
	actDeleteIP        = "delete_ip"
	actListSecrets     = "list_secrets"
	actSetSecrets      = "set_secrets"
	actGetSecret       = "get_secret"
	actSetSecret       = "set_secret"
	actDeleteSecret    = "delete_secret"
	actCreateMachine   = "create_machine"
	actGetMachine      = "get_machine"
	actListMachines    = "list_machines"
	actUpdateMachine   = "update_machine"
	actStartMachine    = "start_machine"
	actStopMachine     = "stop_machine"
	actSuspendMachine  = "suspend_machine"
	actRestartMachine  = "restart_machine"
	actSignalMachine   = "signal_machine"
	actCordonMachine   = "cordon_machine"
	actUncordonMachine = "uncordon_machine"
	actDestroyMachine  = "destroy_machine"
	actWaitMachine     = "wait_machine"
	actAcquireLease    = "acquire_lease" // also refresh
	actGetLease        = "get_lease"
	actReleaseLease    = "release_lease"
	actGetMetadata     = "get_metadata"
	actSetMetadata     = "set_metadata"
	actDeleteMetadata  = "delete_metadata"
	actPatchMetadata   = "patch_metadata"
)

// Actions lists every action name the emulator logs, limits and accepts in SetFault.
var Actions = []string{
	actCreateApp, actGetApp, actListApps, actDeleteApp,
	actListIPs, actAssignIP, actDeleteIP,
	actListSecrets, actSetSecrets, actGetSecret, actSetSecret, actDeleteSecret,
	actCreateMachine, actGetMachine, actListMachines, actUpdateMachine,
	actStartMachine, actStopMachine, actSuspendMachine, actRestartMachine, actSignalMachine,
	actCordonMachine, actUncordonMachine, actDestroyMachine, actWaitMachine,
	actAcquireLease, actGetLease, actReleaseLease,
	actGetMetadata, actSetMetadata, actDeleteMetadata, actPatchMetadata,
}
