#!/bin/sh
# Run the benchmarks against a fresh sbxd of this build tree, on scratch
# dirs, and print one key=value line per figure.
#   bench/run.sh [BUILD_DIR] [-- rpc_bench args]
# Needs root (jails). Not part of CI.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift

dir=$(mktemp -d /tmp/sbx-bench-XXXXXX)
chmod 711 "$dir"
"$build/server/sbxd" --init_path="$build/server/init/sbx-init" \
	--state_dir="$dir/state" --run_dir="$dir/run" \
	--listen="ipc://$dir/rpc" --events="ipc://$dir/events" \
	--uid_base=3900000 --uid_slots=256 --log_level=warn \
	>"$dir/sbxd.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
export SBX_URL="ipc://$dir/rpc" SBX_EVENTS_URL="ipc://$dir/events"
i=0
until "$build/clients/sbx" health >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 200 ] || { cat "$dir/sbxd.log"; exit 1; }
	sleep 0.05
done
echo "host_cpus=$(nproc)"
echo "kernel=$(uname -r)"
"$build/bench/rpc_bench" "$@"
