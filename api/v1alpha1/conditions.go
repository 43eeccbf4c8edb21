package v1alpha1

// Condition types. Ready is on both kinds and summarises the others: it is True only when every
// named condition of the kind is True.
const (
	// ReadyCondition is True when the Fly side matches the spec and the object can serve traffic;
	// its message then says what runs.
	ReadyCondition = "Ready"
	// ReconcilingCondition follows the kstatus convention (sigs.k8s.io/cli-utils/pkg/kstatus): True
	// while hangar works toward the spec and nothing is wrong that a retry will not fix, with
	// Ready's reason and message; False once Ready is True or the object is Stalled.
	ReconcilingCondition = "Reconciling"
	// StalledCondition follows the kstatus convention: True when nothing changes until someone acts
	// (Fly refused the spec, a name, network or host is taken, a Secret is missing, the Fly token is
	// refused), with Ready's reason and message; False otherwise. Never True with Reconciling.
	StalledCondition = "Stalled"
	// PausedCondition is True while the object carries PausedAnnotation (absent otherwise).
	PausedCondition = "Paused"

	// AppCreatedCondition (UserApp) is True once the Fly app exists and is known to be ours.
	AppCreatedCondition = "AppCreated"
	// SecretsSyncedCondition (UserApp) is True once the Fly app secrets hold hangar's keys and every
	// spec.secrets value, at the version recorded in status.secretsVersion.
	SecretsSyncedCondition = "SecretsSynced"
	// PrivateIPReadyCondition (UserApp) is True once the Flycast address exists, or when none is asked for.
	PrivateIPReadyCondition = "PrivateIPReady"
	// ConnectionSecretReadyCondition (UserApp) is True once the connection Secret is written.
	ConnectionSecretReadyCondition = "ConnectionSecretReady"

	// AppReadyCondition (UserMachine) is True while the referenced UserApp is Ready.
	AppReadyCondition = "AppReady"
	// MachineCreatedCondition (UserMachine) is True once the Fly machine exists and is recorded.
	MachineCreatedCondition = "MachineCreated"
	// ConfigSyncedCondition (UserMachine) is True when the machine runs the config the spec asks for.
	ConfigSyncedCondition = "ConfigSynced"
	// PowerStateSyncedCondition (UserMachine) is True when the machine's state agrees with spec.powerState.
	PowerStateSyncedCondition = "PowerStateSynced"

	// HostsAcceptedCondition (UserApp, UserMachine) is True when the object's UserApp owns every host
	// it claims (spec.routing.hosts, and a UserApp's subdomain under the router's base domain), so
	// the router sends them its way. A host has one owner: the UserApp of the oldest claim; a
	// UserMachine only refines hosts its own UserApp owns (router/README.md, "How a host is routed").
	HostsAcceptedCondition = "HostsAccepted"
)

// Condition reasons. Each is set on the conditions named in its comment.
const (
	// ReadyReason: the condition holds (all types).
	ReadyReason = "Ready"
	// ReconcilingReason: work is under way and nothing is wrong yet (all types).
	ReconcilingReason = "Reconciling"
	// CreatedReason: hangar created the Fly app or machine (AppCreated, MachineCreated).
	CreatedReason = "Created"
	// AdoptedReason: an existing Fly app or machine was proven ours and taken over (AppCreated,
	// MachineCreated).
	AdoptedReason = "Adopted"
	// ObservedReason: the object's managementPolicy is ObserveOnly; the Fly app or machine was read
	// and is reported, and the manager writes nothing to it (AppCreated, MachineCreated, and the
	// conditions of the work it leaves undone).
	ObservedReason = "Observed"
	// NotFoundReason: the Fly app (spec.appName under managementPolicy ObserveOnly) or machine
	// (spec.machineID) the object names does not exist (AppCreated, MachineCreated, Ready).
	NotFoundReason = "NotFound"
	// IdleReason: the machine served no request for spec.idle.timeout and the manager stopped or
	// suspended it; the next request wakes it (PowerStateSynced).
	IdleReason = "Idle"
	// NameTakenReason: the Fly app name belongs to someone else: an older UserApp, another hangar
	// object or installation (the app's owner marker says so), or an app hangar cannot prove is
	// its own; choose another spec.appName, or add the fly.hangar.dev/adopt annotation if an
	// unmarked app really is yours (AppCreated, Ready).
	NameTakenReason = "NameTaken"
	// NetworkInUseReason: spec.network is used by another UserApp's app, which is older, and the two
	// may not share it (sharing needs the same namespace and spec.shareNetwork on both) (AppCreated,
	// Ready).
	NetworkInUseReason = "NetworkInUse"
	// SecretNotFoundReason: a Secret or key named in spec.secrets does not exist, or the Secret does
	// not carry the fly.hangar.dev/app-secret: "true" label (SecretsSynced, Ready). The two cases
	// read alike, so a UserApp's author learns nothing of Secrets not shared with UserApps.
	SecretNotFoundReason = "SecretNotFound"
	// CreatePendingReason: a create was sent to Fly and its outcome is not known yet (the answer was
	// lost, or Fly's lists lag behind); hangar looks for the app or machine before creating another
	// (AppCreated, MachineCreated, Ready).
	CreatePendingReason = "CreatePending"
	// WaitingForAppReason: the referenced UserApp is missing, not Ready yet, or outside the
	// manager's shard (AppReady, Ready).
	WaitingForAppReason = "WaitingForApp"
	// UpdatingReason: a new machine config is being applied (ConfigSynced).
	UpdatingReason = "Updating"
	// PowerTransitionReason: the machine is being started, stopped or suspended (PowerStateSynced).
	PowerTransitionReason = "PowerTransition"
	// ThrottledReason: Fly's rate limits (a 429 or the client-side limiter) delayed the work (any type).
	ThrottledReason = "Throttled"
	// UnauthorizedReason: Fly refused the API token; fix the token Secret (any type).
	UnauthorizedReason = "Unauthorized"
	// FlyRejectedReason: Fly refused the request as invalid; the message says why (any type).
	FlyRejectedReason = "FlyRejected"
	// FlyUnavailableReason: Fly answered with a server error or could not be reached (any type).
	FlyUnavailableReason = "FlyUnavailable"
	// ConflictReason: another client holds the machine's lease or changed the machine first; hangar
	// tries again shortly (any type).
	ConflictReason = "Conflict"
	// PreconditionFailedReason: the machine's current state does not allow the action yet (for
	// example a start while it is still stopping); hangar tries again shortly (any type).
	PreconditionFailedReason = "PreconditionFailed"
	// DeletingReason: the object is being deleted and Fly resources are being removed (Ready).
	DeletingReason = "Deleting"
	// HostConflictReason: a claimed host is owned by another UserApp, whose claim is older; the
	// router does not send it here. The message names each lost host and the UserApp that owns it
	// (only "in another namespace" for another tenant's) (HostsAccepted, Ready).
	HostConflictReason = "HostConflict"
	// PausedReason: the object carries PausedAnnotation, and the pass stopped at the first Fly
	// write it would have made, which the message names (Paused, Ready, Stalled).
	PausedReason = "Paused"
	// InvalidHostReason: a claimed host, or the subdomain under the base domain, is not a DNS name,
	// and the router ignores it (HostsAccepted, Ready).
	InvalidHostReason = "InvalidHost"
)

// AppSecretLabel marks a Secret whose values UserApps of its namespace may take into their Fly app
// secrets (spec.secrets): the manager reads only Secrets labelled with the value "true", so writing
// a UserApp grants no access to the namespace's other Secrets. The connection Secrets hangar
// writes carry it with the value "false": they are never app secrets.
const AppSecretLabel = "fly.hangar.dev/app-secret"

// RotateKeysAnnotation on a UserApp rotates its keys: each new value raises status.keyGeneration.
// The previous keys stay valid for the manager's --key-rotation-overlap (status.previousKeysValidUntil),
// so machines, the router and the coordinator move over without a failed request.
const RotateKeysAnnotation = "fly.hangar.dev/rotate-keys"

// PausedAnnotation set to "true" on a UserApp or UserMachine pauses it: the manager makes no Fly
// write for it (no create, update, power change, secrets, deletion) but still reads Fly, so status
// shows what runs and the first change a pass would make. Removing the annotation resumes at once.
// A paused object being deleted keeps its finalizer, and its Fly resources, until it is unpaused.
const PausedAnnotation = "fly.hangar.dev/paused"

// AdoptAnnotation on a UserApp asks to take over an existing Fly app of the same name in the same
// org that hangar cannot prove it created. It takes effect only once the app has been released to
// this UserApp on the Fly side, by whoever holds the Fly token: the Fly secret named in the
// NameTaken message (HANGAR_RELEASE_…, see internal/keys ReleaseMarker). An app marked as another
// hangar object's is never taken over.
const AdoptAnnotation = "fly.hangar.dev/adopt"
