#!/usr/bin/env bash
# Provides kube-apiserver and etcd (and, on request, kubectl) for envtest without the release buckets.
#
# Usage: hack/envtest-assets.sh [--kubectl]
# Prints the folder holding the binaries on stdout (progress goes to stderr), so callers can do
#   export KUBEBUILDER_ASSETS="$(hack/envtest-assets.sh)"
#
# Order of preference:
#   1. an existing $KUBEBUILDER_ASSETS that holds both binaries;
#   2. the per-user cache (the folder setup-envtest uses, so both tools find the same binaries);
#   3. setup-envtest, given a short timeout, where downloads work;
#   4. a build from the Go module proxy (minutes the first time; cached afterwards).
set -euo pipefail

K8S_VERSION="${ENVTEST_K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ENVTEST_ETCD_VERSION:-3.6.16}"
SETUP_ENVTEST="${SETUP_ENVTEST:-}"
SETUP_ENVTEST_TIMEOUT="${SETUP_ENVTEST_TIMEOUT:-20}"
WANT_KUBECTL=false
[[ "${1:-}" == "--kubectl" ]] && WANT_KUBECTL=true

log() { printf 'envtest-assets: %s\n' "$*" >&2; }
die() { printf 'envtest-assets: error: %s\n' "$*" >&2; exit 1; }

have_assets() { [[ -x "$1/kube-apiserver" && -x "$1/etcd" ]] && { ! $WANT_KUBECTL || [[ -x "$1/kubectl" ]]; }; }

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]] && have_assets "$KUBEBUILDER_ASSETS"; then
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

command -v go >/dev/null || die "go is not on PATH; install Go 1.26 first"
goos="$(go env GOOS)"
goarch="$(go env GOARCH)"
data_home="${XDG_DATA_HOME:-$HOME/.local/share}"
cache_home="${XDG_CACHE_HOME:-$HOME/.cache}"
# setup-envtest keeps one folder per Kubernetes version and platform under k8s/.
asset_dir="$data_home/kubebuilder-envtest/k8s/${K8S_VERSION}-${goos}-${goarch}"
build_root="$cache_home/hangar/envtest-build"

if have_assets "$asset_dir"; then
  echo "$asset_dir"
  exit 0
fi
mkdir -p "$asset_dir" "$build_root"

# setup-envtest downloads release archives; here that usually fails fast, but where it works it is
# much faster than a build. It cannot provide kubectl, so it is skipped when kubectl is wanted.
if [[ -n "$SETUP_ENVTEST" && -x "$SETUP_ENVTEST" ]] && ! $WANT_KUBECTL \
  && [[ ! -x "$asset_dir/kube-apiserver" ]]; then
  log "trying setup-envtest $K8S_VERSION (timeout ${SETUP_ENVTEST_TIMEOUT}s)"
  if dir="$(timeout "$SETUP_ENVTEST_TIMEOUT" "$SETUP_ENVTEST" use "$K8S_VERSION" \
      --bin-dir "$data_home/kubebuilder-envtest" -p path 2>/dev/null)" && have_assets "$dir"; then
    echo "$dir"
    exit 0
  fi
  log "setup-envtest could not download; building from the Go module proxy instead"
fi

# staging_replaces prints one `replace` line per staging module of k8s.io/kubernetes, pinned to the
# published v0.x twin of the release (kubernetes' own go.mod points them at ./staging/...).
staging_replaces() {
  local gomod
  gomod="$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" \
    | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  [[ -f "$gomod" ]] || die "could not download k8s.io/kubernetes@v${K8S_VERSION} from the module proxy"
  sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod" \
    | while read -r mod; do echo "replace $mod => $mod v0.${K8S_VERSION#1.}"; done
}

build_kubernetes() {
  local dir="$build_root/kubernetes-$K8S_VERSION"
  mkdir -p "$dir"
  if [[ ! -f "$dir/go.sum" ]]; then
    log "preparing a build module for k8s.io/kubernetes v$K8S_VERSION"
    {
      echo "module hangar.dev/envtest-kubernetes"
      echo
      echo "go 1.26"
      echo
      echo "require k8s.io/kubernetes v${K8S_VERSION}"
      echo
      staging_replaces
    } >"$dir/go.mod.tmp"
    mv "$dir/go.mod.tmp" "$dir/go.mod"
    cat >"$dir/tools.go" <<'GO'
//go:build tools

// Package tools pins the Kubernetes commands this module builds.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
    log "resolving modules (go mod tidy; a few minutes the first time)"
    (cd "$dir" && go mod tidy >&2) || { rm -f "$dir/go.sum"; die "go mod tidy failed for k8s.io/kubernetes v$K8S_VERSION (see above)"; }
  fi
  if [[ ! -x "$asset_dir/kube-apiserver" ]]; then
    log "building kube-apiserver v$K8S_VERSION (about 6-7 minutes on 2 cores, once)"
    (cd "$dir" && CGO_ENABLED=0 go build -trimpath -o "$asset_dir/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver >&2) \
      || die "building kube-apiserver failed (see above)"
    mv "$asset_dir/kube-apiserver.tmp" "$asset_dir/kube-apiserver"
  fi
  if $WANT_KUBECTL && [[ ! -x "$asset_dir/kubectl" ]]; then
    log "building kubectl v$K8S_VERSION (a few minutes, once)"
    (cd "$dir" && CGO_ENABLED=0 go build -trimpath -o "$asset_dir/kubectl.tmp" k8s.io/kubernetes/cmd/kubectl >&2) \
      || die "building kubectl failed (see above)"
    mv "$asset_dir/kubectl.tmp" "$asset_dir/kubectl"
  fi
}

build_etcd() {
  local dir="$build_root/etcd-$ETCD_VERSION"
  mkdir -p "$dir"
  if [[ ! -f "$dir/go.sum" ]]; then
    log "preparing a build module for etcd v$ETCD_VERSION"
    printf 'module hangar.dev/envtest-etcd\n\ngo 1.26\n' >"$dir/go.mod"
    cat >"$dir/main.go" <<'GO'
// Command etcd runs the etcd server, built from the module proxy for envtest.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    (cd "$dir" && go get "go.etcd.io/etcd/server/v3@v${ETCD_VERSION}" >&2 && go mod tidy >&2) \
      || { rm -f "$dir/go.sum"; die "could not resolve go.etcd.io/etcd/server/v3@v$ETCD_VERSION from the module proxy"; }
  fi
  log "building etcd v$ETCD_VERSION (about 1-2 minutes, once)"
  (cd "$dir" && CGO_ENABLED=0 go build -trimpath -o "$asset_dir/etcd.tmp" . >&2) || die "building etcd failed (see above)"
  mv "$asset_dir/etcd.tmp" "$asset_dir/etcd"
}

start=$SECONDS
[[ -x "$asset_dir/etcd" ]] || build_etcd
if [[ ! -x "$asset_dir/kube-apiserver" ]] || { $WANT_KUBECTL && [[ ! -x "$asset_dir/kubectl" ]]; }; then
  build_kubernetes
fi
have_assets "$asset_dir" || die "binaries missing in $asset_dir after the build"
log "assets ready in $asset_dir ($((SECONDS - start))s)"
echo "$asset_dir"
