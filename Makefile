# hangar Makefile: the kubebuilder contract (manifests generate fmt vet lint test build run
# docker-build install deploy ...). Tools are pinned and installed into ./bin with `go install`.

# The release this tree prepares: dist/install.yaml and the Helm chart (charts/hangar, whose appVersion
# is v$(RELEASE_VERSION)) deploy the image tagged v$(RELEASE_VERSION). To cut a release, bump it here
# and in charts/hangar/Chart.yaml, run `make build-installer`, commit, and tag v$(RELEASE_VERSION).
RELEASE_VERSION ?= 0.1.0
IMG ?= ghcr.io/hangar-dev/hangar:v$(RELEASE_VERSION)
# The router image of a FlyRouter (spec.image): the Dockerfile's router target.
ROUTER_IMG ?= ghcr.io/hangar-dev/hangar-router:v$(RELEASE_VERSION)
ENVTEST_K8S_VERSION ?= 1.37.2
ENVTEST_ETCD_VERSION ?= 3.6.16

CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.8.2
GOLANGCI_LINT_VERSION ?= v2.15.0
SETUP_ENVTEST_VERSION ?= v0.25.1
CRD_REF_DOCS_VERSION ?= v0.3.0

LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
KUSTOMIZE ?= $(LOCALBIN)/kustomize-$(KUSTOMIZE_VERSION)
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
SETUP_ENVTEST ?= $(LOCALBIN)/setup-envtest-$(SETUP_ENVTEST_VERSION)
CRD_REF_DOCS ?= $(LOCALBIN)/crd-ref-docs-$(CRD_REF_DOCS_VERSION)
KUBECTL ?= $(LOCALBIN)/kubectl

# Build identity linked into the binaries (internal/version): `hangar version`, the hangar_build_info
# metric and the start-up log show it. Override on the command line for a release (VERSION=v0.3.0).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
VERSION_PKG := github.com/hangar-dev/hangar/internal/version
# := so git and date run once per make, and all three binaries carry the same values.
LDFLAGS := -X $(VERSION_PKG).version=$(VERSION) -X $(VERSION_PKG).commit=$(COMMIT) -X $(VERSION_PKG).date=$(BUILD_DATE)

GO_TEST_FLAGS ?= -race -count=1 -timeout 30m
DEV_FLAGS ?=

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show the targets and what they do.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRDs and RBAC from the API types and kubebuilder markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd:allowDangerousTypes=false paths="./api/..." paths="./controllers/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate the DeepCopy methods of the API types.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Run gofmt over the module.
	gofmt -l -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet over the module.
	go vet ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint (config in .golangci.yml).
	$(GOLANGCI_LINT) run ./...

# The kustomizations `make verify` builds; add a directory here when you add one under config/.
KUSTOMIZE_DIRS ?= config/default config/crd config/rbac config/manager config/router config/samples config/samples/pools config/argocd config/prometheus
# What `make verify` regenerates and then expects unchanged in git.
GENERATED_FILES ?= api/v1alpha1/zz_generated.deepcopy.go config/crd/bases config/rbac/role.yaml \
	charts/hangar/crds charts/hangar/files dist/install.yaml docs/api-reference.md

.PHONY: verify
verify: generate manifests chart build-installer api-docs $(KUSTOMIZE) ## Check that generated files are committed up to date and that every kustomization builds.
	@git diff --exit-code -- $(GENERATED_FILES) || { echo "generated files are stale: run 'make generate manifests chart build-installer api-docs' and commit the result"; exit 1; }
	@untracked="$$(git ls-files --others --exclude-standard -- $(GENERATED_FILES))"; [ -z "$$untracked" ] || { echo "generated files are not committed: $$untracked"; exit 1; }
	@grep -qx 'appVersion: "v$(RELEASE_VERSION)"' charts/hangar/Chart.yaml || { echo "charts/hangar/Chart.yaml: appVersion must be \"v$(RELEASE_VERSION)\" (RELEASE_VERSION in the Makefile)"; exit 1; }
	@for dir in $(KUSTOMIZE_DIRS); do \
		$(KUSTOMIZE) build $$dir >/dev/null || { echo "kustomize build $$dir failed"; exit 1; }; \
	done

.PHONY: api-docs
api-docs: $(CRD_REF_DOCS) ## Generate docs/api-reference.md from the API types' doc comments and markers (hack/crd-ref-docs).
	$(CRD_REF_DOCS) --source-path=./api --config=hack/crd-ref-docs/config.yaml --templates-dir=hack/crd-ref-docs/templates \
		--renderer=markdown --output-mode=single --output-path=docs/api-reference.md --log-level=WARN

.PHONY: chart
chart: manifests ## Copy the CRDs, the manager's generated RBAC rules and the tenant roles into the Helm chart (charts/hangar).
	rm -rf charts/hangar/crds charts/hangar/files
	mkdir -p charts/hangar/crds charts/hangar/files/tenant-roles
	cp config/crd/bases/*.yaml charts/hangar/crds/
	cp config/rbac/role.yaml charts/hangar/files/manager-role.yaml
	cp config/rbac/userapp_*_role.yaml config/rbac/usermachine_*_role.yaml config/rbac/userapppool_*_role.yaml config/rbac/userappclaim_*_role.yaml charts/hangar/files/tenant-roles/

.PHONY: envtest-assets
envtest-assets: $(SETUP_ENVTEST) ## Provide kube-apiserver and etcd for tests (built from the module proxy when they cannot be downloaded).
	@SETUP_ENVTEST=$(SETUP_ENVTEST) ENVTEST_K8S_VERSION=$(ENVTEST_K8S_VERSION) ENVTEST_ETCD_VERSION=$(ENVTEST_ETCD_VERSION) hack/envtest-assets.sh >/dev/null

.PHONY: test
test: $(SETUP_ENVTEST) ## Run every test of the module with -race against a real kube-apiserver and etcd.
	@assets="$$(SETUP_ENVTEST=$(SETUP_ENVTEST) ENVTEST_K8S_VERSION=$(ENVTEST_K8S_VERSION) ENVTEST_ETCD_VERSION=$(ENVTEST_ETCD_VERSION) hack/envtest-assets.sh)"; \
	echo "KUBEBUILDER_ASSETS=$$assets"; \
	KUBEBUILDER_ASSETS="$$assets" go test $(GO_TEST_FLAGS) ./...

.PHONY: bench
bench: ## Run the benchmarks and print the BENCH table (each figure against a baseline measured in the same run).
	@assets="$$(ENVTEST_K8S_VERSION=$(ENVTEST_K8S_VERSION) ENVTEST_ETCD_VERSION=$(ENVTEST_ETCD_VERSION) hack/envtest-assets.sh)"; \
	KUBEBUILDER_ASSETS="$$assets" HANGAR_BENCH=1 go test -v -count=1 -timeout 60m -run '^TestReport' ./... > bench.out 2>&1 || { cat bench.out; exit 1; }; \
	echo "BENCH <name> <value> <unit> target <op> <value>"; grep '^BENCH ' bench.out

CHAOS_POINTS ?= 1000

.PHONY: chaos
chaos: ## Kill the manager at CHAOS_POINTS (1000) seeded points under the realistic Fly profile and print the BENCH table; HANGAR_CRASH_SEED replays a run.
	@assets="$$(ENVTEST_K8S_VERSION=$(ENVTEST_K8S_VERSION) ENVTEST_ETCD_VERSION=$(ENVTEST_ETCD_VERSION) hack/envtest-assets.sh)"; \
	KUBEBUILDER_ASSETS="$$assets" HANGAR_CHAOS=1 HANGAR_CRASH_POINTS=$(CHAOS_POINTS) go test -v -count=1 -timeout 4h -run '^TestCrashPoints$$' ./test/crash/ > chaos.out 2>&1 || { grep -E -A3 'crash run|FAIL|replay it alone' chaos.out | tail -100; exit 1; }; \
	grep 'crash run:' chaos.out | tail -1; echo "BENCH <name> <value> <unit> target <op> <value>"; grep '^BENCH ' chaos.out

.PHONY: dev
dev: $(KUBECTL) ## Run the local stack (apiserver, Fly emulator + proxy, manager, router) with config/samples; Ctrl-C stops it.
	@assets="$$(ENVTEST_K8S_VERSION=$(ENVTEST_K8S_VERSION) ENVTEST_ETCD_VERSION=$(ENVTEST_ETCD_VERSION) hack/envtest-assets.sh --kubectl)"; \
	KUBEBUILDER_ASSETS="$$assets" go run ./cmd/hangar dev $(DEV_FLAGS)

##@ Build

.PHONY: build
build: ## Build the manager, router and hangar binaries into ./bin.
	go build -ldflags '$(LDFLAGS)' -o $(LOCALBIN)/manager ./cmd/manager
	go build -ldflags '$(LDFLAGS)' -o $(LOCALBIN)/router ./cmd/router
	go build -ldflags '$(LDFLAGS)' -o $(LOCALBIN)/hangar ./cmd/hangar

.PHONY: run
run: ## Run the manager against the cluster of the current kubeconfig.
	go run ./cmd/manager

.PHONY: kubectl
kubectl: $(KUBECTL) ## Build a kubectl matching the test apiserver into ./bin.

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) --build-arg BUILD_DATE=$(BUILD_DATE) -t $(IMG) .

.PHONY: docker-build-router
docker-build-router: ## Build the router image a FlyRouter runs on Fly (entrypoint /router; needs a Docker engine).
	docker build --target router --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) --build-arg BUILD_DATE=$(BUILD_DATE) -t $(ROUTER_IMG) .

##@ Deployment

.PHONY: install
install: manifests $(KUSTOMIZE) ## Install the CRDs into the cluster of the current kubeconfig.
	$(KUSTOMIZE) build config/crd | $(KUBECTL_CMD) apply --server-side -f -

.PHONY: uninstall
uninstall: manifests $(KUSTOMIZE) ## Remove the CRDs from the cluster of the current kubeconfig.
	$(KUSTOMIZE) build config/crd | $(KUBECTL_CMD) delete --ignore-not-found -f -

# build-default prints config/default with the manager's and router's image set to IMG. It edits a
# temporary copy of config/, as `kustomize edit set image` rewrites the kustomization it runs in.
define build-default
tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; cp -R config "$$tmp/config"; \
(cd "$$tmp/config/manager" && $(KUSTOMIZE) edit set image controller=$(IMG)); \
(cd "$$tmp/config/router" && $(KUSTOMIZE) edit set image router=$(IMG)); \
$(KUSTOMIZE) build "$$tmp/config/default"
endef

.PHONY: build-installer
build-installer: manifests $(KUSTOMIZE) ## Write dist/install.yaml: config/default in one file, with image IMG (committed, for kubectl apply -f).
	@mkdir -p dist
	@{ echo "# hangar $(IMG): CRDs, manager, router and RBAC in hangar-system. Generated by make build-installer"; \
	  echo "# from config/default; do not edit. Install: kubectl apply --server-side -f dist/install.yaml"; \
	  $(build-default); } > dist/install.yaml.tmp
	@mv dist/install.yaml.tmp dist/install.yaml

.PHONY: deploy
deploy: manifests $(KUSTOMIZE) ## Deploy the manager and router (config/default) with image IMG.
	@$(build-default) | $(KUBECTL_CMD) apply --server-side -f -

.PHONY: undeploy
undeploy: $(KUSTOMIZE) ## Remove what deploy applied.
	$(KUSTOMIZE) build config/default | $(KUBECTL_CMD) delete --ignore-not-found -f -

##@ Tools

KUBECTL_CMD ?= $(shell command -v kubectl 2>/dev/null || echo $(KUBECTL))

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

$(CONTROLLER_GEN): | $(LOCALBIN)
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

$(KUSTOMIZE): | $(LOCALBIN)
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

$(GOLANGCI_LINT): | $(LOCALBIN)
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

$(SETUP_ENVTEST): | $(LOCALBIN)
	$(call go-install-tool,$(SETUP_ENVTEST),sigs.k8s.io/controller-runtime/tools/setup-envtest,$(SETUP_ENVTEST_VERSION))

$(CRD_REF_DOCS): | $(LOCALBIN)
	$(call go-install-tool,$(CRD_REF_DOCS),github.com/elastic/crd-ref-docs,$(CRD_REF_DOCS_VERSION))

$(KUBECTL): | $(LOCALBIN)
	@assets="$$(ENVTEST_K8S_VERSION=$(ENVTEST_K8S_VERSION) hack/envtest-assets.sh --kubectl)"; ln -sf "$$assets/kubectl" $(KUBECTL)
	@echo "kubectl: $(KUBECTL)"

# go-install-tool installs module $(2) at version $(3) as $(1), a versioned file name, so changing a
# pinned version re-installs it.
define go-install-tool
@[ -f "$(1)" ] || { \
set -e; \
echo "Installing $(2)@$(3)"; \
rm -f "$(1)"; \
GOBIN="$(LOCALBIN)" go install "$(2)@$(3)"; \
mv "$$(echo "$(1)" | sed "s/-$(3)$$//")" "$(1)"; \
}
endef
