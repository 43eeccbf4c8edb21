package controllers

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/keys"
)

// ensureApp creates the router's Fly app on the org's default network, or adopts it when it is
// provably this FlyRouter's (its owner marker, or the derived name with no marker), and reads it
// back once per drift interval.
func (r *flyRouterReconciler) ensureApp(ctx context.Context, s *routerScope) error {
	st := &s.fr.Status
	if st.AppID != "" {
		if r.options.untilDriftCheck(st.LastObservedTime, s.fr.UID, time.Now()) > 0 {
			markKnown(&st.Conditions, s.fr.Generation, flyv1alpha1.AppCreatedCondition, fmt.Sprintf("Fly app %s exists", st.AppName))
			return nil
		}
		fa, err := r.fly.GetApp(ctx, s.flyName)
		switch {
		case isFlyKind(err, FlyNotFound):
			ctrl.LoggerFrom(ctx).Info("Router app deleted outside hangar; creating it again", "flyApp", s.flyName)
			r.events.normal(s.fr, EventDriftCorrected, "Create", "Fly app %s was deleted outside hangar; creating it again", s.flyName)
			r.forgetApp(s)
		case err != nil:
			return err
		case fa.ID != st.AppID:
			return r.routerNameTaken(s)
		default:
			now := metav1.Now()
			st.LastObservedTime = &now
			markKnown(&st.Conditions, s.fr.Generation, flyv1alpha1.AppCreatedCondition, fmt.Sprintf("Fly app %s exists", st.AppName))
			return nil
		}
	}
	now := metav1.Now()
	st.CreateRequestedTime = &now
	if err := persistStatus(ctx); err != nil {
		return err
	}
	ctrl.LoggerFrom(ctx).Info("Creating router app", "flyApp", s.flyName, "org", s.org)
	fa, err := r.fly.CreateApp(ctx, s.org, s.flyName, "")
	reason, verb := flyv1alpha1.CreatedReason, "Created"
	if isFlyKind(err, FlyNameTaken) {
		if fa, err = r.adoptRouterApp(ctx, s); err != nil {
			return err
		}
		reason, verb = flyv1alpha1.AdoptedReason, "Adopted"
	} else if err != nil {
		if refusedOutright(err) {
			st.CreateRequestedTime = nil
		}
		return err
	}
	st.AppName, st.AppID, st.Org, st.CreateRequestedTime = fa.Name, fa.ID, fa.Org, nil
	st.LastObservedTime = &now
	r.events.normal(s.fr, verb, "Create", "%s Fly app %s in org %s for the router", verb, fa.Name, fa.Org)
	markTrue(&st.Conditions, s.fr.Generation, flyv1alpha1.AppCreatedCondition, reason, fmt.Sprintf("Fly app %s %s", fa.Name, reason))
	return nil
}

// forgetApp drops what status says of an app that is gone, so everything is made again.
func (r *flyRouterReconciler) forgetApp(s *routerScope) {
	st := &s.fr.Status
	st.AppID, st.PublicIPs, st.PrivateIP, st.SecretsVersion, st.SecretsDigest = "", nil, "", 0, ""
	st.CredentialExpiry, st.CredentialRenewalTime = nil, nil
}

// adoptRouterApp takes over an app of the router's name that is provably this FlyRouter's: in the
// same org, and marked as its own or, unmarked, of the name hangar derives (hangar made it and lost
// the answer before setting the marker).
func (r *flyRouterReconciler) adoptRouterApp(ctx context.Context, s *routerScope) (FlyApp, error) {
	fa, err := r.fly.GetApp(ctx, s.flyName)
	switch {
	case isFlyKind(err, FlyNotFound) && r.options.untilConsistent(s.fr.Status.CreateRequestedTime, time.Now()) > 0:
		return FlyApp{}, waitFor(r.options.TransitionPoll, flyv1alpha1.CreatePendingReason,
			"Fly app %s was created but cannot be read yet; looking again", s.flyName)
	case isFlyKind(err, FlyNotFound), isFlyKind(err, FlyForbidden):
		return FlyApp{}, r.routerNameTaken(s)
	case err != nil:
		return FlyApp{}, err
	case fa.Org != s.org:
		return FlyApp{}, r.routerNameTaken(s)
	}
	owner, err := r.routerOwnership(ctx, s)
	if err != nil {
		return FlyApp{}, err
	}
	if owner == ownedByUs || (owner == unmarked && s.derivedName) {
		return fa, nil
	}
	return FlyApp{}, r.routerNameTaken(s)
}

func (r *flyRouterReconciler) routerNameTaken(s *routerScope) error {
	return waitFor(r.options.DriftInterval, flyv1alpha1.NameTakenReason,
		"Fly app name %q is taken by an app hangar cannot prove is this FlyRouter's: choose another spec.appName", s.flyName)
}

// routerOwnership reads the app's owner markers (names only).
func (r *flyRouterReconciler) routerOwnership(ctx context.Context, s *routerScope) (ownership, error) {
	names, err := r.fly.AppSecretNames(ctx, s.flyName)
	if err != nil {
		return unmarked, err
	}
	mine := r.keys.OwnerMarker(s.flyName, string(s.fr.UID))
	found := unmarked
	for _, name := range names {
		switch {
		case name == mine:
			found = ownedByUs
		case keys.IsOwnerMarker(name):
			return ownedByAnother, nil
		}
	}
	return found, nil
}

// ensureAddresses gives the app its public addresses and its Flycast address (on the org's
// default network, where the coordinator reaches the management service).
func (r *flyRouterReconciler) ensureAddresses(ctx context.Context, s *routerScope) error {
	st := &s.fr.Status
	if len(st.PublicIPs) == 0 {
		ips, err := r.routerFly.EnsurePublicIPs(ctx, st.AppName)
		if err != nil {
			return err
		}
		st.PublicIPs = ips
	}
	if st.PrivateIP == "" {
		ip, err := r.fly.EnsurePrivateIP(ctx, st.AppName, "")
		if err != nil {
			return err
		}
		st.PrivateIP = ip
	}
	markTrue(&st.Conditions, s.fr.Generation, flyv1alpha1.AddressesReadyCondition, flyv1alpha1.ReadyReason,
		fmt.Sprintf("public %v, Flycast %s", st.PublicIPs, st.PrivateIP))
	return nil
}

// desiredRouterMachine is the machine every slot runs: the router image with its settings as
// environment, the public service on 80/443 and the management service on 9090, a readiness check
// on /readyz, and the secrets version holding the current credentials. namespace is the manager's:
// the router's activity Leases go there, where its ServiceAccount may write them.
func desiredRouterMachine(fr *flyv1alpha1.FlyRouter, namespace string) DesiredMachine {
	env := map[string]string{
		"HANGAR_ROUTER_KUBECONFIG_ENV":     RouterSecretKubeconfig,
		"HANGAR_ROUTER_ROOT_KEY_ENV":       RouterSecretRootKey,
		"HANGAR_ROUTER_ACTIVITY_NAMESPACE": namespace,
	}
	if fr.Spec.BaseDomain != "" {
		env["HANGAR_ROUTER_BASE_DOMAIN"] = fr.Spec.BaseDomain
	}
	if t := fr.Spec.PublicTokens; t != nil {
		env["HANGAR_ROUTER_PUBLIC_TOKEN_KEY_ENV"] = RouterSecretTokenKey
		if t.Issuer != "" {
			env["HANGAR_ROUTER_PUBLIC_TOKEN_ISSUER"] = t.Issuer
		}
		if t.MaxTTL != nil {
			env["HANGAR_ROUTER_PUBLIC_TOKEN_MAX_TTL"] = t.MaxTTL.Duration.String()
		}
	}
	guest := flyv1alpha1.Guest{CPUKind: flyv1alpha1.CPUKindShared, CPUs: 1, MemoryMB: 256}
	if fr.Spec.Guest != nil {
		guest = *fr.Spec.Guest
	}
	off, on := flyv1alpha1.AutostopOff, true
	d := DesiredMachine{
		Image: fr.Spec.Image,
		Env:   env,
		Guest: guest,
		Services: []flyv1alpha1.MachineService{
			{Name: "public", Protocol: flyv1alpha1.ServiceProtocolTCP, InternalPort: routerPublicPort, Autostart: &on, Autostop: off,
				Ports: []flyv1alpha1.ServicePort{
					{Port: 80, Handlers: []flyv1alpha1.PortHandler{flyv1alpha1.PortHandlerHTTP}},
					{Port: 443, Handlers: []flyv1alpha1.PortHandler{flyv1alpha1.PortHandlerTLS, flyv1alpha1.PortHandlerHTTP}},
				}},
			{Name: "management", Protocol: flyv1alpha1.ServiceProtocolTCP, InternalPort: routerManagementPort, Autostart: &on, Autostop: off,
				Ports: []flyv1alpha1.ServicePort{{Port: routerManagementPort, Handlers: []flyv1alpha1.PortHandler{flyv1alpha1.PortHandlerHTTP}}}},
		},
		Checks: []flyv1alpha1.MachineCheck{{
			Name: "readyz", Type: "http", Port: routerHealthPort, Path: "/readyz", Method: "GET", Kind: "readiness",
			Interval: &metav1.Duration{Duration: 5 * time.Second}, Timeout: &metav1.Duration{Duration: 2 * time.Second},
			GracePeriod: &metav1.Duration{Duration: 5 * time.Second},
		}},
		Restart:           &flyv1alpha1.RestartPolicy{Policy: "always"},
		StopConfig:        &flyv1alpha1.StopConfig{Signal: "SIGTERM", Timeout: &metav1.Duration{Duration: 30 * time.Second}},
		Metadata:          map[string]string{MetadataUID: string(fr.UID), MetadataName: fr.Name},
		MinSecretsVersion: fr.Status.SecretsVersion,
	}
	d.Metadata[MetadataConfigHash] = configHash(d)
	return d
}

// routerSlot is one machine place of a region: the machine there now and, during a rollout, the
// one replacing it.
type routerSlot struct {
	region string
	index  int
}

func (s routerSlot) String() string { return fmt.Sprintf("%s-%d", s.region, s.index) }

// forSlot is the desired machine for one slot: its name carries the config hash, so a replacement
// never takes the name of the machine it replaces and a repeated create fails with "name taken".
func (d DesiredMachine) forSlot(slot routerSlot) DesiredMachine {
	out := d
	out.Region = slot.region
	out.Metadata = map[string]string{metadataRouterSlot: slot.String()}
	for k, v := range d.Metadata {
		out.Metadata[k] = v
	}
	out.Name = fmt.Sprintf("router-%s-%s", slot, d.Metadata[MetadataConfigHash][:8])
	return out
}

// rollOut makes every slot run a healthy machine of the desired config. Empty slots are filled at
// once; a slot whose machine is outdated gets its replacement first, and the old machine is
// cordoned once the new one is healthy and destroyed after the drain delay. One replacement is
// under way at a time, so a region never has two machines down at once, and never none healthy.
func (r *flyRouterReconciler) rollOut(ctx context.Context, s *routerScope) error {
	st := &s.fr.Status
	app := st.AppName
	machines, err := r.fly.FindMachine(ctx, app, MetadataUID, string(s.fr.UID))
	if err != nil {
		return err
	}
	hash := s.desired.Metadata[MetadataConfigHash]
	bySlot := map[string][]FlyMachine{}
	for _, m := range machines {
		r.created.Delete(m.Name) // listed: the list has caught up with its create
		bySlot[m.Metadata[metadataRouterSlot]] = append(bySlot[m.Metadata[metadataRouterSlot]], m)
	}
	var (
		regions  []flyv1alpha1.RouterRegionStatus
		busy     bool // a replacement is under way: start no other
		pending  []string
		retiring []FlyMachine // old machines whose replacement is healthy, and machines of no slot
		wanted   = map[string]bool{}
		allReady = true
	)
	for _, rg := range s.fr.Spec.Regions {
		rs := flyv1alpha1.RouterRegionStatus{Region: rg.Region, Desired: max(rg.Machines, 1)}
		for i := range int(rs.Desired) {
			slot := routerSlot{rg.Region, i}
			wanted[slot.String()] = true
			var current *FlyMachine
			var old []FlyMachine
			for _, m := range bySlot[slot.String()] {
				if m.Metadata[MetadataConfigHash] == hash && current == nil {
					current = &m
				} else {
					old = append(old, m)
				}
			}
			switch {
			case current == nil && len(old) > 0 && busy:
				pending = append(pending, slot.String())
				allReady = false
			case current == nil:
				if len(old) > 0 {
					busy = true
				}
				if err := r.createRouterMachine(ctx, s, slot, len(old) > 0); err != nil {
					return err
				}
				pending = append(pending, slot.String())
				allReady = false
			default:
				health, err := r.routerFly.MachineHealth(ctx, app, current.ID)
				if err != nil {
					return err
				}
				if !health.healthy() {
					pending = append(pending, slot.String())
					allReady = false
					busy = busy || len(old) > 0
					continue
				}
				rs.Ready++
				retiring = append(retiring, old...)
			}
		}
		regions = append(regions, rs)
	}
	for name, ms := range bySlot {
		if !wanted[name] && allReady {
			retiring = append(retiring, ms...)
		}
	}
	st.Regions = regions
	full := 0
	for _, rs := range regions {
		if rs.Ready == rs.Desired {
			full++
		}
	}
	st.RegionsReady = fmt.Sprintf("%d/%d", full, len(regions))
	draining, err := r.retire(ctx, s, retiring)
	if err != nil {
		return err
	}
	if !allReady || draining > 0 {
		slices.Sort(pending)
		return waitFor(r.options.TransitionPoll, flyv1alpha1.RollingOutReason,
			"rolling out image %s: %d slot(s) waiting for a healthy machine %v, %d old machine(s) draining",
			s.fr.Spec.Image, len(pending), pending, draining)
	}
	if st.Image != s.fr.Spec.Image {
		r.events.normal(s.fr, EventRolledOut, "RollOut", "Every region runs image %s with the current credentials", s.fr.Spec.Image)
	}
	st.Image = s.fr.Spec.Image
	markTrue(&st.Conditions, s.fr.Generation, flyv1alpha1.MachinesReadyCondition, flyv1alpha1.ReadyReason,
		fmt.Sprintf("%d region(s) run image %s, every machine healthy", len(regions), st.Image))
	return nil
}

// EventRolledOut is the reason of the Event saying every machine of a FlyRouter runs the current
// image and credentials.
const EventRolledOut = "RolledOut"

// createRouterMachine creates the slot's machine. A create whose answer was lost shows up in the
// next pass's list (the name is deterministic, so a second create fails with "name taken").
func (r *flyRouterReconciler) createRouterMachine(ctx context.Context, s *routerScope, slot routerSlot, replacing bool) error {
	d := s.desired.forSlot(slot)
	if at, ok := r.created.Load(d.Name); ok && time.Since(at.(time.Time)) < r.options.ConsistencyWindow {
		return nil // created; rollOut waits for the list to show it
	}
	ctrl.LoggerFrom(ctx).Info("Creating router machine", "slot", slot.String(), "name", d.Name, "image", d.Image)
	_, err := r.fly.CreateMachine(ctx, s.fr.Status.AppName, d)
	if isFlyKind(err, FlyNameTaken) {
		return waitFor(r.options.TransitionPoll, flyv1alpha1.CreatePendingReason,
			"router machine %s exists but is not listed yet; looking again", d.Name)
	}
	if err != nil {
		return err
	}
	r.created.Store(d.Name, time.Now())
	if replacing {
		r.events.normal(s.fr, EventUpdated, "RollOut", "Replacing the machine of slot %s with one of image %s (secrets version %d)",
			slot, d.Image, d.MinSecretsVersion)
	}
	return nil
}

// retire cordons the machines given and destroys those cordoned for longer than the drain delay.
// It returns how many are still draining.
func (r *flyRouterReconciler) retire(ctx context.Context, s *routerScope, ms []FlyMachine) (int, error) {
	drain := r.opts.DrainDelay
	if drain <= 0 {
		drain = DefaultRouterDrainDelay
	}
	draining := 0
	for _, m := range ms {
		since, known := r.cordoned.Load(m.ID)
		if !known {
			ctrl.LoggerFrom(ctx).Info("Cordoning router machine", "machine", m.ID, "slot", m.Metadata[metadataRouterSlot])
			if err := r.routerFly.CordonMachine(ctx, s.fr.Status.AppName, m.ID); err != nil && !isFlyKind(err, FlyNotFound) {
				return draining, err
			}
			r.cordoned.Store(m.ID, time.Now())
			draining++
			continue
		}
		if time.Since(since.(time.Time)) < drain {
			draining++
			continue
		}
		ctrl.LoggerFrom(ctx).Info("Destroying router machine", "machine", m.ID, "slot", m.Metadata[metadataRouterSlot])
		if err := r.fly.DestroyMachine(ctx, s.fr.Status.AppName, m.ID); err != nil {
			return draining, err
		}
		r.cordoned.Delete(m.ID)
	}
	return draining, nil
}

// finalize deletes the router app (unless another owner's marker is on it) and the Secret the
// tokens are bound to, which revokes every token minted for this FlyRouter.
func (r *flyRouterReconciler) finalize(ctx context.Context, s *routerScope) error {
	if err := r.deleteBinding(ctx, s); err != nil {
		return err
	}
	st := &s.fr.Status
	if st.AppName == "" {
		return nil
	}
	owner, err := r.routerOwnership(ctx, s)
	switch {
	case isFlyKind(err, FlyNotFound):
		r.events.normal(s.fr, EventDeleted, "Delete", "Deleted Fly app %s", st.AppName)
		return nil
	case err != nil:
		return err
	case owner == ownedByAnother:
		r.events.warning(s.fr, EventNotOwned, "Delete", "Left Fly app %s in place: it is marked as owned by another hangar object or installation", st.AppName)
		return nil
	}
	ctrl.LoggerFrom(ctx).Info("Deleting router app", "flyApp", st.AppName)
	if err := r.fly.DeleteApp(ctx, st.AppName); err != nil {
		return err
	}
	return waitFor(r.options.TransitionPoll, flyv1alpha1.DeletingReason, "Fly app %s is being deleted", st.AppName)
}

// deleteBinding deletes the Secret this FlyRouter's tokens are bound to.
func (r *flyRouterReconciler) deleteBinding(ctx context.Context, s *routerScope) error {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.opts.Namespace, Name: bindingSecretName(s.fr)}}
	if err := r.client.Delete(ctx, secret); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting the Secret the router's tokens are bound to: %w", err)
	}
	return nil
}
