package flysim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"
)

// org is one Fly organization: the unit a token acts in.
type org struct {
	slug      string
	numericID int64
	// defaultNetwork is the org's default 6PN; apps created without `network` live there.
	defaultNetwork *network
	// networks are the org's custom networks by name, created on first use.
	networks map[string]*network
	// idempotencyKeys maps an app-create idempotency_key to the app it created.
	idempotencyKeys     map[string]string
	crossNetworkReplays bool
}

// network is a 6PN private network. Its 32-bit ID is the two groups after `fdaa:` in every address on it.
type network struct {
	name     string // "" for the org's default network
	id       uint32
	org      string
	flycasts int // Flycast addresses handed out, for unique host parts
}

// prefix is the first three groups of every address on the network, e.g. "fdaa:2:45b".
func (n *network) prefix() string { return fmt.Sprintf("fdaa:%x:%x", n.id>>16, n.id&0xffff) }

// displayName is how the apps list reports the network: Fly says "default" for the default network.
func (n *network) displayName() string {
	if n.name == "" {
		return "default"
	}
	return n.name
}

// app is one Fly app with everything that belongs to it.
type app struct {
	id        string
	name      string
	org       string
	network   *network
	numericID int64
	createdAt time.Time

	machines   map[string]*machine // by machine ID, destroyed ones included
	machineSeq uint64              // creation counter; orders list results and cursors
	secrets    map[string]*secret  // as of the last write
	secretsVer uint64              // the last write's version
	// secretsPending are writes not yet visible to reads and booting machines (profile SecretsLag),
	// oldest first; meanwhile they see secretsVisible.
	secretsPending []secretsState
	secretsVisible secretsState
	ips            []*ipAssignment

	// rng draws everything the profile decides about this app (seeded by Options.Seed and the app).
	rng *rand.Rand
	// visibleAt is when the app becomes readable after its create (profile AppCreateLag); zero: at once.
	visibleAt time.Time
	// deleting is set by a delete whose completion the profile delays (AppDeleteLag); deleteTimer
	// completes it.
	deleting    bool
	deleteTimer *time.Timer
}

// liveMachineCount is machine_count in the app shapes: machines not destroyed.
func (a *app) liveMachineCount() int {
	n := 0
	for _, m := range a.machines {
		if m.state != StateDestroyed {
			n++
		}
	}
	return n
}

// machineNamed returns the machine holding name, ignoring destroyed machines (their names are free).
func (a *app) machineNamed(name string) *machine {
	for _, m := range a.machines {
		if m.name == name && m.state != StateDestroyed {
			return m
		}
	}
	return nil
}

// machine is one Fly Machine. All fields are guarded by Server.mu.
type machine struct {
	app       *app
	id        string
	name      string
	region    string
	privateIP string
	seq       uint64
	state     string
	cordoned  bool
	createdAt time.Time
	updatedAt time.Time

	// versions holds every version, oldest first; the last one is current. Old versions read `replaced`.
	versions []*machineVersion
	// events are newest first, capped at maxMachineEvents.
	events []machineEvent
	lease  *lease

	// timer runs the pending asynchronous transition, if any; epoch invalidates a timer that fired
	// after a newer action superseded it.
	timer *time.Timer
	epoch uint64
	// updateTarget is where the running update (state replacing) will leave the machine, so a second
	// update during the swap keeps the first one's intent.
	updateTarget string
	// changed is closed and replaced on every state change, waking /wait callers.
	changed chan struct{}

	// rng draws everything the profile decides about this machine (seeded by Options.Seed and the
	// machine's ID, so other machines' timers cannot change its draws).
	rng *rand.Rand
	// listedAt is when the machine list learns of the create (profile ListLag); zero: at once.
	listedAt time.Time
	// destroyedAt is when the machine reached destroyed; the list learns of it at delistedAt, and
	// until then lists the machine in stateBeforeDestroyed. goneAt, when set, is when every call
	// about the machine starts answering 404 (profile DestroyedReadable).
	destroyedAt          time.Time
	delistedAt           time.Time
	stateBeforeDestroyed string
	goneAt               time.Time
	// listenDelay is how long after reaching started its simulated listeners open (profile
	// ListenDelay), drawn at each boot.
	listenDelay time.Duration
}

// machineVersion is one immutable config of a machine.
type machineVersion struct {
	id             string
	config         json.RawMessage
	createdAt      time.Time
	secretsVersion uint64 // the app secrets version the version booted with
	skipSecrets    bool
	// secretValues are the app's secret values at secretsVersion (none with skipSecrets): what the
	// simulated machine of this version sees, even after the app's secrets change. Open in the sheet:
	// when a machine picks up new secrets; here only with a new version (update), as min_secrets_version
	// suggests.
	secretValues map[string]string
}

func (m *machine) current() *machineVersion { return m.versions[len(m.versions)-1] }

// version returns the version with that ID, or nil.
func (m *machine) version(id string) *machineVersion {
	for _, v := range m.versions {
		if v.id == id {
			return v
		}
	}
	return nil
}

// pending reports whether an asynchronous transition is scheduled.
func (m *machine) pending() bool { return m.timer != nil }

const maxMachineEvents = 50

// machineEvent is one entry of a machine's event list (§4.1 `events`).
type machineEvent struct {
	id     string
	typ    string
	status string
	source string
	at     time.Time
}

func (m *machine) latestEventID() string {
	if len(m.events) == 0 {
		return ""
	}
	return m.events[0].id
}

// lease is a machine lease (§4.6).
type lease struct {
	nonce       string
	owner       string
	description string
	expiresAt   time.Time
	version     string
}

// secret is one app secret. Its value never leaves the emulator except with show_secrets.
type secret struct {
	name      string
	value     string
	createdAt time.Time
	updatedAt time.Time
	version   uint64 // app secrets version of the last write
}

// ipAssignment is one address from the ip_assignments endpoints.
type ipAssignment struct {
	ip          string // "" for egress_pair, which sets pairV4/pairV6
	pairV4      string
	pairV6      string
	typ         string
	region      string
	serviceName string
	shared      bool
	egress      bool
	network     *network // only for private_v6 (Flycast)
	networkOrg  string
	createdAt   time.Time
}
