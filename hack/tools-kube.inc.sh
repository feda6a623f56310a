# shellcheck shell=bash
# The Kubernetes test peers (etcd, kube-apiserver) for hack/tools.sh, which
# defines the helpers used here (have, gobuild, log, TOOLS_DIR, WORK_DIR).
# Kept apart until it is merged into tools.sh; sourced, never run.

# Versions this checkout is tested against (../shared/TOOLING.md).
ETCD_VERSION=v3.6.6
KUBERNETES_VERSION=v1.36.3

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

# Named after the binary, like tool_golangci-lint: `hack/tools.sh
# kube-apiserver` calls it, as testenv's "not found" message says.
tool_kube-apiserver() {
	have kube-apiserver "$KUBERNETES_VERSION" && return
	local dir="$WORK_DIR/kubernetes-$KUBERNETES_VERSION"
	mkdir -p "$dir"
	# k8s.io/kubernetes requires its staging modules (k8s.io/api, ...) at
	# v0.0.0 and replaces them with ./staging/src/...; a wrapper module
	# replaces each with its published twin, v1.X.Y -> v0.X.Y.
	if [[ ! -f "$dir/go.sum" ]]; then
		(
			cd "$dir"
			rm -f go.mod
			go mod init hydra-tools/kubernetes >/dev/null 2>&1
			printf 'package tools\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver"\n' >tools.go
			go mod edit -require="k8s.io/kubernetes@$KUBERNETES_VERSION"
			local gomod m
			gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
			for m in $(awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$gomod"); do
				go mod edit -replace="$m=$m@v0.${KUBERNETES_VERSION#v1.}"
			done
			go mod tidy
		)
	fi
	gobuild kube-apiserver "$KUBERNETES_VERSION" "$dir" k8s.io/kubernetes/cmd/kube-apiserver
}
