#!/usr/bin/env bash
# Builds the real peers that Hydra's tests talk to (MinIO, Consul, ...) into a
# versioned cache outside the repository, once. Later runs find them and return
# at once. Usage: hack/tools.sh [TOOL...]   (default: every tool)
#
# The cache lives in ${HYDRA_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hydra/bin};
# each binary carries its version in its name (minio-<version>), and a stable
# symlink (minio) points at the version this checkout wants.
set -euo pipefail

TOOLS_DIR=${HYDRA_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hydra/bin}
WORK_DIR=${TOOLS_DIR%/bin}/build
mkdir -p "$TOOLS_DIR" "$WORK_DIR"

# Versions this checkout is tested against. Bumping one rebuilds it.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
CONSUL_VERSION=v1.22.0
GOLANGCI_LINT_VERSION=v2.15.0

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

# The peers `make test` needs; golangci-lint is built by `make lint` only.
ALL=(minio consul)
for t in "${@:-${ALL[@]}}"; do
	"tool_$t"
done
log "ready in $TOOLS_DIR"
