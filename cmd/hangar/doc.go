// Command hangar is the developer tool: it runs the pieces of a local hangar stack. Each subcommand
// lives in its own file and registers itself in main.go's table:
//
//	hangar flysim   serve the Fly Machines API emulator (internal/flysim) under /v1
//	hangar dev      run the local stack (internal/devstack)
//
// Both take --fly-profile fast|realistic (default fast) and --fly-time-scale: the realistic profile
// makes the emulator behave as real Fly does (internal/flysim/profiles.go), the time scale shrinks or
// stretches its delays.
//
// It is not the operator (cmd/manager) nor the router (cmd/router), and it never talks to the real Fly.
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
