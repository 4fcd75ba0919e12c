#!/bin/sh
# Install the Debian 12 packages sbx builds, runs and tests with.
# Idempotent: does nothing when everything is present. Needs root.
set -eu

PKGS="build-essential cmake pkg-config git clang libclang-rt-14-dev
libnng-dev libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libmbedtls-dev
uuid-dev bubblewrap libmicrohttpd-dev libcjson-dev libsqlite3-dev
libseccomp-dev libcmocka-dev openssl util-linux procps iproute2 python3
python3-ipykernel python3-jupyter-client python3-numpy python3-pandas
python3-matplotlib"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages:$missing; run as root" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq $missing
