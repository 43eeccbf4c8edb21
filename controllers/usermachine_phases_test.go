package controllers

import (
	"testing"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
)

func TestPowerDecisions(t *testing.T) {
	cases := []struct {
		want      flyv1alpha1.PowerState
		state     string
		satisfied bool
		action    string
	}{
		{flyv1alpha1.PowerStateStarted, MachineStarted, true, ""},
		{flyv1alpha1.PowerStateStarted, MachineStopped, false, "start"},
		{flyv1alpha1.PowerStateStarted, MachineSuspended, false, "start"},
		{flyv1alpha1.PowerStateStarted, MachineCreated, false, "start"},
		{flyv1alpha1.PowerStateStarted, MachineFailed, false, "start"},
		{flyv1alpha1.PowerStateStopped, MachineStopped, true, ""},
		{flyv1alpha1.PowerStateStopped, MachineCreated, true, ""},
		{flyv1alpha1.PowerStateStopped, MachineStarted, false, "stop"},
		{flyv1alpha1.PowerStateStopped, MachineSuspended, false, "stop"},
		{flyv1alpha1.PowerStateSuspended, MachineSuspended, true, ""},
		{flyv1alpha1.PowerStateSuspended, MachineStarted, false, "suspend"},
		{flyv1alpha1.PowerStateSuspended, MachineStopped, false, "start"},
		{flyv1alpha1.PowerStateAuto, MachineStopped, true, ""},
	}
	for _, tc := range cases {
		if got := powerSatisfied(tc.want, tc.state); got != tc.satisfied {
			t.Errorf("powerSatisfied(%s, %s) = %v", tc.want, tc.state, got)
		}
		if tc.satisfied {
			continue
		}
		if action, _, _ := powerActionFor(tc.want, tc.state); action != tc.action {
			t.Errorf("powerActionFor(%s, %s) = %s, want %s", tc.want, tc.state, action, tc.action)
		}
	}
}
