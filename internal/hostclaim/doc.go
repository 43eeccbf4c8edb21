// Package hostclaim is the one rule, shared by the manager and the router, that decides which UserApp owns each host UserApps and UserMachines claim.
package hostclaim
