// Command hangar is the developer tool: it runs the pieces of a local hangar stack. Each subcommand
// lives in its own file and registers itself in main.go's table:
//
//	hangar flysim   serve the Fly Machines API emulator (internal/flysim) under /v1
//	hangar dev      run the local stack (internal/devstack) with a kustomization applied to it
//	hangar version  print the version, commit and build date of this build (internal/version)
//	hangar plan     print the Fly calls the manager would make for the objects of files (docs/plan.md)
//
// hangar dev checks every port it listens on (--fly-api, --proxy-http, --proxy-management) and
// builds --samples (any directory kustomize builds; config/samples by default) before it starts
// anything, so that a taken port or a broken kustomization fails at once, naming the flag or file
// to fix. It then waits until the samples are Ready, prints what to try, and runs until Ctrl-C.
// With --router-on-fly the router is deployed as users deploy it (a FlyRouter; docs/flyrouter.md)
// rather than run in process.
//
// flysim and dev take --fly-profile fast|realistic (default fast) and --fly-time-scale: the
// realistic profile makes the emulator behave as real Fly does (internal/flysim/profiles.go), the
// time scale shrinks or stretches its delays. `hangar <command> -h` lists a command's flags; a bad
// flag exits with status 2 and one line saying what was wrong.
//
// It is not the operator (cmd/manager) nor the router (cmd/router), and only hangar plan talks to
// the real Fly, making reads only.
//
// Example: start the emulator for one org and talk to it with curl.
//
//	hangar flysim --listen 127.0.0.1:4280 --token devtoken --org personal
//
//	curl -s -H 'Authorization: Bearer devtoken' \
//	     -d '{"app_name":"my-app","org_slug":"personal","network":"my-app-net"}' \
//	     http://127.0.0.1:4280/v1/apps
//	# 201 {"id":"…16 chars…","created_at":1767225600000}
//
//	curl -s -H 'Authorization: Bearer devtoken' \
//	     -d '{"name":"web-1","region":"ams","config":{"image":"nginx:1.27","guest":{"cpu_kind":"shared","cpus":1,"memory_mb":256}}}' \
//	     http://127.0.0.1:4280/v1/apps/my-app/machines
//	# 200 {"id":"…14 hex…","name":"web-1","state":"created","region":"ams",…}
//
//	curl -s -H 'Authorization: Bearer devtoken' \
//	     'http://127.0.0.1:4280/v1/apps/my-app/machines/<id>/wait?state=started&timeout=30'
//	# 200 {"ok":true,"state":"started","version":"…","event_id":"…"}
//
// Several orgs: repeat --token/--org in pairs (the n-th token acts in the n-th org).
package main
