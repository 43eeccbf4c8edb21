package crash_test

import "github.com/hangar-dev/hangar/internal/flysim"

// timeScale shrinks every delay of the realistic profile (list lag, app windows, transitions) so a
// point takes seconds, keeping their order and asynchrony.
const timeScale = 0.1

// emulatorOptions is one point's emulator: the realistic profile, scaled, seeded, with the point's
// kill hook.
func emulatorOptions(seed int64, hook func(flysim.CallPoint)) flysim.Options {
	profile := flysim.Realistic()
	profile.TimeScale = timeScale
	return flysim.Options{
		Seed:     seed,
		Orgs:     []flysim.OrgToken{{Token: token, Org: org}},
		Profile:  profile,
		CallHook: hook,
	}
}
