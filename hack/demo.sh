#!/usr/bin/env bash
# `make demo`: Hydra's control plane on embedded defaults, no Kubernetes and
# no S3. It starts hydra-manager on a bbolt file in a temporary directory,
# generates two versions of a sample dataset on the local disk, publishes
# them through the hydra CLI from file:// URIs, and shows what the manager
# holds at each step. Everything is removed at the end.
set -euo pipefail

BIN=${BIN:-$(pwd)/bin}
work=$(mktemp -d -t hydra-demo.XXXXXX)
manager_pid=""
cleanup() {
	[[ -n "$manager_pid" ]] && kill "$manager_pid" 2>/dev/null && wait "$manager_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

# A free port on loopback, so the demo never collides with a running manager.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18080)
export HYDRA_MANAGER="http://127.0.0.1:$port"

step "start hydra-manager on a bbolt store ($work/state.db)"
"$BIN/hydra-manager" --listen "127.0.0.1:$port" --store "bolt://$work/state.db" \
	--insecure-no-auth >"$work/manager.log" 2>&1 &
manager_pid=$!
for _ in $(seq 1 100); do
	curl -fsS "$HYDRA_MANAGER/readyz" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -fsS "$HYDRA_MANAGER/readyz" >/dev/null || { cat "$work/manager.log"; exit 1; }
echo "manager ready at $HYDRA_MANAGER"

step "generate two versions of a sample dataset under $work/data"
for v in 2026-01-01T00-00-00 2026-02-01T00-00-00; do
	mkdir -p "$work/data/model/$v/shards" "$work/data/config/$v"
	for i in 0 1 2; do head -c $((100000 + i)) /dev/urandom >"$work/data/model/$v/shards/part-$i.bin"; done
	echo "{\"release\": \"$v\"}" >"$work/data/config/$v/settings.json"
done
find "$work/data" -type f | sed "s|$work/||" | sort

step "create a channel"
run "$BIN/hydra" channel create demo --keep 5

step "publish: --version auto picks the newest version present in every dataset"
rm -rf "$work/data/config/2026-02-01T00-00-00" # config has only January for now
run "$BIN/hydra" publish demo --dataset "model=file://$work/data/model/{VERSION}/" \
	--dataset "config=file://$work/data/config/{VERSION}/" --version auto

step "the config for February lands; publish again"
mkdir -p "$work/data/config/2026-02-01T00-00-00"
echo '{"release": "2026-02-01T00-00-00"}' >"$work/data/config/2026-02-01T00-00-00/settings.json"
run "$BIN/hydra" publish demo --dataset "model=file://$work/data/model/{VERSION}/" \
	--dataset "config=file://$work/data/config/{VERSION}/" --version auto
run "$BIN/hydra" channel show demo

step "roll back, then look at the head"
run "$BIN/hydra" rollback demo
run "$BIN/hydra" release ls demo

step "the manifest the nodes will download (first lines)"
"$BIN/hydra" release show demo 2026-01-01T00-00-00 --manifest -o json | head -n 25

step "done; cleaning up"
