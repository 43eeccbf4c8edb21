// Package scale runs the manager binary against 2 000 UserMachines and reports what the fleet costs it (make bench).
package scale
