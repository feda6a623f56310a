#!/usr/bin/env bash
# Installs the Debian packages the end-to-end cluster needs from the host
# (testenv.ClusterPackages): containerd and runc for the containers,
# iptables for kube-proxy and CNI, the CNI plugins, and busybox-static for
# the node and busybox images (internal/images' tests import every image
# into a real containerd), and iproute2 (ip, tc) for the fleet harness
# (internal/fleet: network namespaces, veths, tc shaping). Returns at once
# when they are there.
set -euo pipefail

PACKAGES=(containerd runc iptables containernetworking-plugins busybox-static iproute2)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
	exit 0
fi
if [[ $(id -u) != 0 ]]; then
	echo "host-packages: missing ${missing[*]}; as root: apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "host-packages: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -qq || true # a stale index still works when the mirror is unreachable
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
