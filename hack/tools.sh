#!/usr/bin/env bash
# Builds the real peers that Hydra's tests talk to (MinIO, Consul, ...) into a
# versioned cache outside the repository, once. Later runs find them and return
# at once. Usage: hack/tools.sh [TOOL...]   (default: every tool the tests need)
#        hack/tools.sh --list             (print that default set, build nothing)
#
# The cache lives in ${HYDRA_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hydra/bin};
# each binary carries its version in its name (minio-<version>), and a stable
# symlink (minio) points at the version this checkout wants.
set -euo pipefail

# The peers `make test` needs (the cluster of `make e2e` included, and mc,
# which the per-volume credential tests use to create MinIO users and
# policies). golangci-lint is built by `make lint` (which `make test` runs first), rclone by
# `make bench`. internal/testenv's TestDefaultToolsCoverTheTests fails when a
# test looks up a tool this list lacks.
KUBE_CLUSTER=(kubelet kube-controller-manager kube-scheduler kube-proxy kubectl)
ALL=(minio mc consul etcd kube-apiserver "${KUBE_CLUSTER[@]}" csi-provisioner)
if [[ ${1:-} == --list ]]; then
	printf '%s\n' "${ALL[@]}"
	exit 0
fi

TOOLS_DIR=${HYDRA_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hydra/bin}
WORK_DIR=${TOOLS_DIR%/bin}/build
mkdir -p "$TOOLS_DIR" "$WORK_DIR"

# Versions this checkout is tested against. Bumping one rebuilds it.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
CONSUL_VERSION=v1.22.0
GOLANGCI_LINT_VERSION=v2.15.0
ETCD_VERSION=v3.6.6
KUBERNETES_VERSION=v1.36.3
# What `make e2e` adds for a single-node cluster.
CSI_PROVISIONER_VERSION=v6.3.0
# A contender of the download benchmark (make bench), built only when asked.
RCLONE_VERSION=v1.76.0
# The MinIO admin client: tests create users with it; also a bench contender.
MC_VERSION=v0.0.0-20250313080218-cf909e1063a9 # what github.com/minio/mc@latest resolves to

log() { printf 'tools: %s\n' "$*" >&2; }

# have NAME VERSION: true when the versioned binary exists; refreshes the link.
have() {
	local bin="$TOOLS_DIR/$1-$2"
	if [[ -x "$bin" ]]; then
		ln -sfn "$1-$2" "$TOOLS_DIR/$1"
		return 0
	fi
	return 1
}

# gobuild NAME VERSION MODULE-DIR PACKAGE [ENV...]: go build PACKAGE inside
# MODULE-DIR into the cache, then point the stable link at it.
gobuild() {
	local name=$1 version=$2 dir=$3 pkg=$4
	shift 4
	log "building $name $version (first time only; this takes minutes)"
	(cd "$dir" && env "$@" CGO_ENABLED=0 go build -trimpath -o "$TOOLS_DIR/$name-$version.tmp" "$pkg")
	mv "$TOOLS_DIR/$name-$version.tmp" "$TOOLS_DIR/$name-$version"
	ln -sfn "$name-$version" "$TOOLS_DIR/$name"
}

tool_minio() {
	have minio "$MINIO_VERSION" && return
	local dir="$WORK_DIR/minio-$MINIO_VERSION"
	mkdir -p "$dir"
	# A throwaway module that requires the wanted version keeps the build
	# reproducible (go install @version would work too, but not pin deps).
	if [[ ! -f "$dir/go.mod" ]]; then
		(
			cd "$dir"
			go mod init hydra-tools/minio >/dev/null 2>&1
			printf 'package tools\n\nimport _ "github.com/minio/minio"\n' >tools.go
			go get "github.com/minio/minio@$MINIO_VERSION"
		)
	fi
	gobuild minio "$MINIO_VERSION" "$dir" github.com/minio/minio
}

tool_consul() {
	have consul "$CONSUL_VERSION" && return
	local dir="$WORK_DIR/consul-$CONSUL_VERSION"
	mkdir -p "$dir"
	# Consul's go.mod has replace directives, so `go install` refuses it; a
	# wrapper module pins the sub-modules those directives pointed at.
	if [[ ! -f "$dir/go.mod" ]]; then
		(
			cd "$dir"
			go mod init hydra-tools/consul >/dev/null 2>&1
			printf 'package tools\n\nimport _ "github.com/hashicorp/consul"\n' >tools.go
			GONOSUMDB=github.com/hashicorp/consul GOFLAGS=-mod=mod go get \
				"github.com/hashicorp/consul@$CONSUL_VERSION" \
				github.com/hashicorp/consul/api@v1.33.0 \
				github.com/hashicorp/consul/envoyextensions@v0.9.0 \
				github.com/hashicorp/consul/proto-public@v0.7.0 \
				github.com/hashicorp/consul/sdk@v0.17.0 \
				github.com/hashicorp/consul/troubleshoot@v0.8.0
		)
	fi
	gobuild consul "$CONSUL_VERSION" "$dir" github.com/hashicorp/consul GONOSUMDB=github.com/hashicorp/consul GOFLAGS=-mod=mod
}

tool_golangci-lint() {
	have golangci-lint "$GOLANGCI_LINT_VERSION" && return
	log "building golangci-lint $GOLANGCI_LINT_VERSION"
	GOBIN="$WORK_DIR/golangci-lint-$GOLANGCI_LINT_VERSION" \
		go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION"
	mv "$WORK_DIR/golangci-lint-$GOLANGCI_LINT_VERSION/golangci-lint" "$TOOLS_DIR/golangci-lint-$GOLANGCI_LINT_VERSION"
	ln -sfn "golangci-lint-$GOLANGCI_LINT_VERSION" "$TOOLS_DIR/golangci-lint"
}

# goinstall NAME VERSION PACKAGE: go install PACKAGE@VERSION into the cache
# under a versioned name, then point the stable link at it.
goinstall() {
	local name=$1 version=$2 pkg=$3
	log "building $name $version (first time only; this takes minutes)"
	GOBIN="$WORK_DIR/$name-$version" CGO_ENABLED=0 go install -trimpath "$pkg@$version"
	mv "$WORK_DIR/$name-$version/$name" "$TOOLS_DIR/$name-$version"
	ln -sfn "$name-$version" "$TOOLS_DIR/$name"
}

tool_rclone() {
	have rclone "$RCLONE_VERSION" && return
	goinstall rclone "$RCLONE_VERSION" github.com/rclone/rclone
}

tool_mc() {
	have mc "$MC_VERSION" && return
	goinstall mc "$MC_VERSION" github.com/minio/mc
}

tool_etcd() {
	have etcd "$ETCD_VERSION" && return
	local dir="$WORK_DIR/etcd-$ETCD_VERSION"
	mkdir -p "$dir"
	# etcd's server module has replace directives, so `go install` refuses
	# it; a wrapper module that requires it builds the same main package.
	# go.sum is written last: without it an interrupted setup starts over.
	if [[ ! -f "$dir/go.sum" ]]; then
		(
			cd "$dir"
			rm -f go.mod
			go mod init hydra-tools/etcd >/dev/null 2>&1
			printf 'package tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >tools.go
			go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
		)
	fi
	gobuild etcd "$ETCD_VERSION" "$dir" go.etcd.io/etcd/server/v3
}

# k8s.io/kubernetes requires its staging modules (k8s.io/api, ...) at v0.0.0
# and replaces them with ./staging/src/...; a wrapper module replaces each
# with its published twin, v1.X.Y -> v0.X.Y. kube_module DIR PACKAGE...
# sets one up that imports PACKAGEs (go.sum is written last, so an
# interrupted setup starts over).
kube_module() {
	local dir=$1
	shift
	[[ -f "$dir/go.sum" ]] && return
	mkdir -p "$dir"
	(
		cd "$dir"
		rm -f go.mod
		go mod init "hydra-tools/$(basename "$dir")" >/dev/null 2>&1
		{
			printf 'package tools\n\nimport (\n'
			printf '\t_ "%s"\n' "$@"
			printf ')\n'
		} >tools.go
		go mod edit -require="k8s.io/kubernetes@$KUBERNETES_VERSION"
		local gomod m
		gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
		for m in $(awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$gomod"); do
			go mod edit -replace="$m=$m@v0.${KUBERNETES_VERSION#v1.}"
		done
		go mod tidy
	)
}

# Named after the binary, like tool_golangci-lint: `hack/tools.sh
# kube-apiserver` calls it, as testenv's "not found" message says.
tool_kube-apiserver() {
	have kube-apiserver "$KUBERNETES_VERSION" && return
	local dir="$WORK_DIR/kubernetes-$KUBERNETES_VERSION"
	kube_module "$dir" k8s.io/kubernetes/cmd/kube-apiserver
	gobuild kube-apiserver "$KUBERNETES_VERSION" "$dir" k8s.io/kubernetes/cmd/kube-apiserver
}

# The rest of a single-node cluster for `make e2e` (tests/e2e):
# built with the version stamped in, or the components report a version
# nothing can parse.
kube_cluster_build() {
	local name=$1
	have "$name" "$KUBERNETES_VERSION" && return
	local dir="$WORK_DIR/kubernetes-cluster-$KUBERNETES_VERSION" v=k8s.io/component-base/version
	kube_module "$dir" $(printf 'k8s.io/kubernetes/cmd/%s ' "${KUBE_CLUSTER[@]}")
	log "building $name $KUBERNETES_VERSION (first time only; this takes minutes)"
	(cd "$dir" && CGO_ENABLED=0 go build -trimpath \
		-ldflags "-s -w -X $v.gitVersion=$KUBERNETES_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$(cut -d. -f2 <<<"$KUBERNETES_VERSION") -X $v.gitTreeState=clean" \
		-o "$TOOLS_DIR/$name-$KUBERNETES_VERSION.tmp" "k8s.io/kubernetes/cmd/$name")
	mv "$TOOLS_DIR/$name-$KUBERNETES_VERSION.tmp" "$TOOLS_DIR/$name-$KUBERNETES_VERSION"
	ln -sfn "$name-$KUBERNETES_VERSION" "$TOOLS_DIR/$name"
}
tool_kubelet() { kube_cluster_build kubelet; }
tool_kube-controller-manager() { kube_cluster_build kube-controller-manager; }
tool_kube-scheduler() { kube_cluster_build kube-scheduler; }
tool_kube-proxy() { kube_cluster_build kube-proxy; }
tool_kubectl() { kube_cluster_build kubectl; }

# external-provisioner v6.3.0: v6.4.0 needs a sig-storage-lib-external-
# provisioner the module proxy does not have. Its go.mod pins Kubernetes'
# staging modules like k8s.io/kubernetes does.
tool_csi-provisioner() {
	have csi-provisioner "$CSI_PROVISIONER_VERSION" && return
	local dir="$WORK_DIR/csi-provisioner-$CSI_PROVISIONER_VERSION"
	if [[ ! -f "$dir/go.sum" ]]; then
		mkdir -p "$dir"
		(
			cd "$dir"
			rm -f go.mod
			go mod init hydra-tools/csi-provisioner >/dev/null 2>&1
			printf 'package tools\n\nimport _ "github.com/kubernetes-csi/external-provisioner/v6/cmd/csi-provisioner"\n' >tools.go
			go mod edit -require="github.com/kubernetes-csi/external-provisioner/v6@$CSI_PROVISIONER_VERSION"
			local gomod m
			gomod=$(go mod download -json "github.com/kubernetes-csi/external-provisioner/v6@$CSI_PROVISIONER_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
			# Its own replace directives (pinned versions) carry over.
			for m in $(awk '$1 == "replace" {$1 = ""; $0 = $0} $2 == "=>" && NF == 4 {print $1 "=" $3 "@" $4}' "$gomod"); do
				go mod edit -replace="$m"
			done
			go mod tidy
		)
	fi
	gobuild csi-provisioner "$CSI_PROVISIONER_VERSION" "$dir" github.com/kubernetes-csi/external-provisioner/v6/cmd/csi-provisioner
}

for t in "${@:-${ALL[@]}}"; do
	if ! declare -F "tool_$t" >/dev/null; then
		log "unknown tool $t (hack/tools.sh --list shows the default set)"
		exit 2
	fi
	"tool_$t"
done
log "ready in $TOOLS_DIR"
