#!/bin/sh
# Set up, build, install and start sbx on this machine (Debian 12, root):
# sbxd listens on ipc:///run/sbx/rpc with embedded defaults. Running it again
# rebuilds and restarts sbxd; sandboxes keep running across the restart.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"

build="$top/build-release"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release \
	-DSBX_BUILD_TESTS=OFF -DSBX_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "$(nproc)"
cmake --install "$build" >/dev/null

prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
sbxd="$prefix/sbin/sbxd"
sbx="$prefix/bin/sbx"
pidfile=/run/sbx/sbxd.pid
log=/var/log/sbxd.log

mkdir -p /run/sbx
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
	pid=$(cat "$pidfile")
	kill -TERM "$pid"
	i=0
	while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 300 ] || { echo "sbxd $pid did not stop" >&2; exit 1; }
		sleep 0.1
	done
fi

# setsid: sbxd gets its own session, so closing this shell leaves it alone.
setsid "$sbxd" >>"$log" 2>&1 </dev/null &
echo $! >"$pidfile"

i=0
until "$sbx" health >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -ge 100 ] || ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
		echo "sbxd did not come up; last lines of $log:" >&2
		tail -n 20 "$log" >&2
		exit 1
	fi
	sleep 0.1
done
"$sbx" health
echo "sbxd is running (pid $(cat "$pidfile"), log $log). Try:"
echo "  sbx run --lang python - <<< 'print(6*7)'"
echo "  id=\$(sbx create); sbx exec \$id -- uname -a; sbx kill \$id"
