#!/bin/sh
# Set up, build and run every test of sbx.
#   scripts/test.sh                 gcc, -Werror, every ctest label
#   scripts/test.sh --sanitize      clang ASan+UBSan: unit, integration, fuzz replay
# Needs root (jails, cgroups) for the integration tests; they skip otherwise.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"

jobs=$(nproc)
if [ "${1:-}" = "--sanitize" ]; then
	build="$top/build-asan"
	cmake -S "$top" -B "$build" -DCMAKE_C_COMPILER=clang \
		-DCMAKE_BUILD_TYPE=Debug -DSBX_WERROR=ON \
		-DSBX_SANITIZER=address,undefined -DSBX_BUILD_BENCH=OFF >/dev/null
	cmake --build "$build" -j "$jobs"
	export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1"
	export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
	cd "$build" && ctest -L 'unit|integration|fuzz' -j "$jobs" --output-on-failure
else
	build="$top/build"
	cmake -S "$top" -B "$build" -DSBX_WERROR=ON >/dev/null
	cmake --build "$build" -j "$jobs"
	cd "$build" && ctest -j "$jobs" --output-on-failure
fi
