// Package crash kills the manager process (the real cmd/manager binary) with SIGKILL at seeded random
// points of its work against the Fly emulator's realistic profile, restarts it, and checks after
// each point that every object converged with exactly one Fly machine, that nothing leaked, that
// status agrees with Fly and that deleted objects are gone.
//
// `make test` runs a short run (HANGAR_CRASH_POINTS, 100 by default); `make chaos` runs 1000 points
// and prints BENCH lines. A failure names its seed and point: HANGAR_CRASH_SEED=<seed>
// HANGAR_CRASH_POINT=<point> replays that point alone, with the same world, faults and kill.
package crash
