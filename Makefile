# Hydra — versioned datasets for Kubernetes workloads.
# `make help` lists the targets. `make demo` and `make test` are the two
# commands a fresh machine needs.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

GO          ?= go
BIN         ?= $(CURDIR)/bin
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X github.com/hydra-csi/hydra/pkg/version.Version=$(VERSION)
# Where `make tools` caches the real peers the tests run (outside the repo).
HYDRA_TOOLS_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/hydra/bin
export HYDRA_TOOLS_DIR
# Two cores here: two test binaries at a time, race detector always on.
TEST_PARALLEL ?= 2
TEST_TIMEOUT  ?= 45m
TEST_FLAGS    ?=
BENCH_TIME    ?= 1x
E2E_TIMEOUT   ?= 40m

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-17s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build hydra, hydra-manager and hydra-csi into ./bin.
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# No container engine needed: docs/images.md. IMAGES_FLAGS=-support adds the
# registry-less end-to-end test's pause, busybox and csi-provisioner images.
IMAGES_OUT   ?= _output/images
IMAGES_FLAGS ?=
.PHONY: images
images: ## Build the hydra-manager, hydra-csi and hydra-csi-node images as docker-archives in _output/images (no engine needed).
	$(GO) run ./hack/images -out $(IMAGES_OUT) -tag $(VERSION) $(IMAGES_FLAGS)

.PHONY: tools
tools: ## Build the real test peers (MinIO, mc, Consul, etcd, Kubernetes, csi-provisioner) into $(HYDRA_TOOLS_DIR), once.
	hack/tools.sh

# The fast tier: pure logic only. No root, no peers, no tools cache; tests
# that need one of those skip under -short and say what they need.
.PHONY: test-unit
test-unit: ## Fast tier: go test -short (no root, no peers, no tools cache); what needs more skips, saying why.
	$(GO) test -short -count=1 -p $(TEST_PARALLEL) $(TEST_FLAGS) ./...

.PHONY: test
test: tools verify lint ## Check gofmt, vet, tidy and golangci-lint, install what the tests need, run every test with -race (fuzz seeds included), then make e2e.
	hack/host-packages.sh
	$(GO) test -race -count=1 -p $(TEST_PARALLEL) -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) ./...
	$(MAKE) e2e

# The cluster's own binaries come from hack/tools.sh; containerd, runc,
# iptables, the CNI plugins and busybox from Debian (hack/host-packages.sh).
.PHONY: e2e
e2e: ## Whole system on a real single-node Kubernetes: images, manifests, kubelet mounts, drained rollouts (root).
	hack/host-packages.sh
	hack/tools.sh etcd kube-apiserver kubelet kube-controller-manager kube-scheduler kube-proxy kubectl csi-provisioner minio consul
	$(GO) test -tags e2e -count=1 -timeout $(E2E_TIMEOUT) -v ./tests/e2e/

# The download benchmark reads BENCH_SHAPES (full | small | COUNTxSIZE,...),
# BENCH_ROUNDS, BENCH_CONTENDERS, BENCH_OUT (default _output/bench) and
# more from the environment; the load benchmark BENCH_LOAD_AGENTS,
# BENCH_LOAD_CHANNELS, BENCH_LOAD_DURATION, BENCH_LOAD_PUBLISH_INTERVAL and
# BENCH_LOAD_STORES (results in BENCH_OUT/load); the fleet benchmark (root)
# BENCH_FLEET_NODES, BENCH_FLEET_PEERS, BENCH_FLEET_SIZE and the link rates
# (results in BENCH_OUT/fleet); docs/benchmarks.md has the method and results.
.PHONY: bench
bench: tools ## Run the benchmarks: manager publish and fan-out on bbolt and Consul; CSI stage+publish and flip latency; a 1,000-pod rollout; download speed; the manager under 1,000 simulated nodes on Consul and bbolt; fleets of 1 to 8 nodes (~45 min).
	hack/tools.sh minio consul rclone mc
	$(GO) test -run '^$$' -bench . -benchtime $(BENCH_TIME) -timeout 30m ./pkg/manager/...
	$(GO) test -run '^$$' -bench 'StagePublish|WarmColdPodStart' -benchtime $(BENCH_TIME) -timeout 30m ./tests/csi/
	$(GO) test -run '^$$' -bench 'Flip' -benchtime 300x -timeout 30m ./pkg/cache/
	$(GO) test -run '^$$' -bench 'Rollout1000' -benchtime $(BENCH_TIME) -timeout 30m ./tests/rollout/
	$(GO) run ./tests/bench/download -go $(GO)
	$(GO) run ./tests/bench/load -go $(GO)
	hack/host-packages.sh
	$(GO) run ./tests/bench/fleet -go $(GO)

.PHONY: demo
demo: build ## Run Hydra end to end on embedded defaults: manager, CSI plugin, real CSI calls and mounts (root).
	$(BIN)/hydra demo

.PHONY: lint
lint: ## Run golangci-lint (built by hack/tools.sh golangci-lint) with .golangci.yml.
	hack/tools.sh golangci-lint
	$(HYDRA_TOOLS_DIR)/golangci-lint run ./...

.PHONY: verify
verify: ## Check gofmt, go vet and that go.mod/go.sum are tidy.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./tests/e2e/
	$(GO) mod tidy -diff

# kubectl renders deploy/ (kustomize), etcd and kube-apiserver take the
# server-side dry runs, csi-provisioner parses the controller's flags.
.PHONY: verify-manifests
verify-manifests: ## Render every kustomization in deploy/, dry-run it on a real kube-apiserver and check its invariants.
	hack/tools.sh etcd kube-apiserver kubectl csi-provisioner
	$(GO) test -count=1 ./tests/manifests/

.PHONY: clean
clean: ## Remove build output (the tools cache stays; rm -rf $(HYDRA_TOOLS_DIR) to rebuild it).
	rm -rf $(BIN)
