#!/bin/sh
# The sbx command line against a real sbxd: every command, its output on
# the right file descriptor, its exit status, --json that parses, and
# usage errors. Starts its own daemon on a scratch dir with ipc:// sockets
# and its own sandbox uid range, and requires it to stop with exit 0.
#
# usage: 08_cli.sh SBX SBXD SBX_INIT        (exit 77: skipped)
set -u

SBX=$1
SBXD=$2
INIT=$3
PY=/usr/bin/python3

if [ "$(id -u)" != 0 ] || [ ! -x /usr/bin/bwrap ]; then
	echo "skip: needs root and bwrap"
	exit 77
fi
if [ ! -x "$PY" ]; then
	echo "skip: needs $PY to check --json output"
	exit 77
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/sbx-test-cli-XXXXXX") || exit 1
# Sandbox uids traverse it to reach their directories.
chmod 711 "$dir"
# Outside the C fixtures' range (1000000 + 64 * (pid % 40000)).
uid_base=$((3600000 + ($$ % 1000) * 64))
SBX_URL="ipc://$dir/run/rpc"
SBX_EVENTS_URL="ipc://$dir/run/events"
export SBX_URL SBX_EVENTS_URL
unset SBX_TOKEN
daemon=
bgpid=
step=start

# On any exit that is not the clean end: kill what we started (sandboxes
# through the API, then the daemon, then any process left in our uid
# range), show the log, keep the scratch dir for a look.
cleanup() {
	rc=$?
	trap - EXIT INT TERM HUP
	if [ -n "$bgpid" ]; then
		kill "$bgpid" 2>/dev/null
		wait "$bgpid" 2>/dev/null
	fi
	if [ -n "$daemon" ]; then
		for id in $("$SBX" ls 2>/dev/null | awk '{print $1}'); do
			"$SBX" kill "$id" >/dev/null 2>&1
		done
		kill -TERM "$daemon" 2>/dev/null
		i=0
		while running "$daemon" && [ $i -lt 300 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -KILL "$daemon" 2>/dev/null
		wait "$daemon" 2>/dev/null
	fi
	for st in /proc/[0-9]*/status; do
		uid=$(awk '/^Uid:/ {print $2; exit}' "$st" 2>/dev/null)
		if [ -n "$uid" ] && [ "$uid" -ge "$uid_base" ] &&
		    [ "$uid" -lt $((uid_base + 64)) ]; then
			p=${st#/proc/}
			kill -KILL "${p%/status}" 2>/dev/null
		fi
	done
	echo "---- sbxd log ($dir/sbxd.log) ----"
	cat "$dir/sbxd.log" 2>/dev/null
	echo "---- end ----"
	echo "FAILED at step: $step (exit $rc); scratch kept in $dir"
	exit 1
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# running PID: the process exists and is not a zombie (kill -0 cannot tell).
running() {
	[ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ] &&
		[ -e "/proc/$1/stat" ]
}

fail() {
	echo "FAIL [$step]: $*" >&2
	exit 1
}

# expect_eq WHAT GOT WANT
expect_eq() {
	[ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}

# expect_in WHAT FILE TEXT: FILE contains TEXT (fixed string).
expect_in() {
	grep -F -q -- "$3" "$2" || {
		echo "---- $2 ----" >&2
		cat "$2" >&2
		fail "$1: no '$3'"
	}
}

# json_check FILE PYTHON: FILE parses as JSON (d) and PYTHON holds.
json_check() {
	"$PY" -c "import json, sys
d = json.load(open(sys.argv[1]))
assert $2, d" "$1" || {
		cat "$1" >&2
		fail "json check: $2"
	}
}

o=$dir/out
e=$dir/err

step="start sbxd"
"$SBXD" --init_path="$INIT" --state_dir="$dir/state" --run_dir="$dir/run" \
	--listen="$SBX_URL" --events="$SBX_EVENTS_URL" --uid_base="$uid_base" \
	--uid_slots=32 --log_level=info >"$dir/sbxd.log" 2>&1 &
daemon=$!
i=0
until "$SBX" health >/dev/null 2>&1; do
	running "$daemon" || fail "sbxd exited during start"
	i=$((i + 1))
	[ $i -lt 200 ] || fail "sbxd did not answer health in 20 s"
	sleep 0.1
done

step=health
"$SBX" health >"$o" 2>"$e" || fail "health exit $?"
expect_in health "$o" "ok: sbxd "
expect_in health "$o" "0/1000 sandboxes"
[ -s "$e" ] && fail "health wrote to stderr"
"$SBX" health --json >"$o" || fail "health --json exit $?"
json_check "$o" "d['sandboxes_running'] == 0 and d['sandboxes_max'] == 1000"
json_check "$o" "isinstance(d['uptime_ms'], int) and d['version'] != ''"
# The global form of --json, before the command, too.
"$SBX" --json health >"$o" || fail "--json health exit $?"
json_check "$o" "d['sandboxes_max'] == 1000"

step=create
id=$("$SBX" create --label team=a --timeout 120 2>"$e") ||
	fail "create exit $?"
echo "$id" | grep -q -x '[0-9a-z]\{20\}' || fail "create printed '$id'"
# Another sandbox, unlabelled, which the label filter must leave out.
id2=$("$SBX" create) || fail "create (2) exit $?"
[ "$id2" != "$id" ] || fail "two creates, one id"

step="ls --json"
"$SBX" ls --label team=a --json >"$o" || fail "ls exit $?"
json_check "$o" "len(d) == 1 and d[0]['id'] == '$id'"
json_check "$o" "d[0]['labels'] == {'team': 'a'} and d[0]['state'] == 'running'"
"$SBX" ls --label team=b --json >"$o" || fail "ls team=b exit $?"
json_check "$o" "d == []"
"$SBX" ls >"$o" || fail "ls exit $?"
expect_eq "ls lines" "$(wc -l <"$o" | tr -d ' ')" 2
expect_in ls "$o" "$id2"

step=get
"$SBX" get "$id" >"$o" || fail "get exit $?"
expect_in get "$o" "$id"
expect_in get "$o" "running"
expect_in get "$o" "team=a"
"$SBX" get "$id" --json >"$o" || fail "get --json exit $?"
json_check "$o" "d['id'] == '$id' and d['network'] == 'deny'"
json_check "$o" "110000 < d['deadline_ms'] - d['created_ms'] <= 121000"

step="exec fds and status"
"$SBX" exec "$id" -- sh -c 'echo out; echo err >&2; exit 7' >"$o" 2>"$e"
expect_eq "exec status" $? 7
expect_eq "exec stdout" "$(cat "$o")" out
expect_eq "exec stderr" "$(cat "$e")" err
# argv goes through as words, not a shell line.
"$SBX" exec "$id" -- printf '%s|' 'a b' '$HOME' "c'd" >"$o" ||
	fail "exec printf exit $?"
expect_eq "exec argv" "$(cat "$o")" "a b|\$HOME|c'd|"
# -c runs a shell command.
"$SBX" exec "$id" -c 'echo $((6 * 7)); id -u' >"$o" || fail "exec -c exit $?"
expect_eq "exec -c" "$(cat "$o")" "42
1000"

step="exec -i"
printf 'hello\nworld\n' | "$SBX" exec -i "$id" -- cat >"$o" 2>"$e" ||
	fail "exec -i cat exit $?"
expect_eq "exec -i" "$(cat "$o")" "hello
world"
# A MiB of random bytes both ways, byte for byte.
head -c 1048576 /dev/urandom >"$dir/in"
"$SBX" exec -i "$id" -- cat <"$dir/in" >"$o" || fail "exec -i big exit $?"
cmp "$dir/in" "$o" || fail "exec -i changed the bytes"
# EOF reaches the process, whose status is ours.
"$SBX" exec -i "$id" -- sh -c 'wc -c; exit 5' <"$dir/in" >"$o"
expect_eq "exec -i status" $? 5
expect_eq "exec -i wc" "$(tr -d ' ' <"$o")" 1048576

step="exec killed"
"$SBX" exec "$id" -c 'kill -9 $$' >"$o" 2>"$e"
expect_eq "kill -9 status" $? 137
"$SBX" exec "$id" -c 'kill -TERM $$'
expect_eq "kill -TERM status" $? 143

step="exec errors"
"$SBX" exec "$id" -- /no/such/program >"$o" 2>"$e"
rc=$?
[ $rc -ne 0 ] || fail "exec of a missing program exit 0"
expect_in "exec missing" "$e" "NOT_FOUND"
"$SBX" exec zzzzzzzzzzzzzzzzzzzz -- true >"$o" 2>"$e"
expect_eq "exec unknown sandbox status" $? 1
expect_in "exec unknown sandbox" "$e" "NOT_FOUND"

step=cp
head -c 3145728 /dev/urandom >"$dir/f"
"$SBX" cp "$dir/f" "$id:/home/user/f" 2>"$e" || fail "cp up exit $?"
"$SBX" cp "$id:/home/user/f" "$dir/f.back" 2>"$e" || fail "cp down exit $?"
cmp "$dir/f" "$dir/f.back" || fail "cp round trip changed the file"
# The bytes inside are the same too.
"$SBX" exec "$id" -- sha256sum /home/user/f >"$o" || fail "sha256sum"
expect_eq "cp sha256" "$(cut -d' ' -f1 <"$o")" \
	"$(sha256sum "$dir/f" | cut -d' ' -f1)"
# An empty file, and cp to stdout.
: >"$dir/empty"
"$SBX" cp "$dir/empty" "$id:/home/user/empty" || fail "cp empty exit $?"
"$SBX" exec "$id" -- sh -c 'echo hi >/home/user/hi' || fail "exec hi"
"$SBX" cp "$id:/home/user/hi" - >"$o" || fail "cp to stdout exit $?"
expect_eq "cp to stdout" "$(cat "$o")" hi
# A missing source: NOT_FOUND, and no empty file left behind.
"$SBX" cp "$id:/home/user/nope" "$dir/nope" 2>"$e"
expect_eq "cp missing status" $? 1
expect_in "cp missing" "$e" "NOT_FOUND"
[ ! -e "$dir/nope" ] || fail "cp of a missing file created $dir/nope"
# A destination that cannot take the bytes is an error, not a short copy.
if [ -w /dev/full ]; then
	"$SBX" cp "$id:/home/user/f" /dev/full 2>"$e"
	expect_eq "cp to /dev/full status" $? 1
	expect_in "cp to /dev/full" "$e" "No space left"
fi
"$SBX" cp "$dir/f" "$dir/f2" 2>"$e"
expect_eq "cp local to local status" $? 2

step=files
"$SBX" files "$id" >"$o" || fail "files exit $?"
expect_in files "$o" "/home/user/f"
grep -q '^file .* 3145728 /home/user/f$' "$o" || fail "files: no f line"
expect_in files "$o" "/home/user/empty"
"$SBX" files "$id" --json >"$o" || fail "files --json exit $?"
json_check "$o" "{'path': '/home/user/f', 'type': 'file', 'size': 3145728, 'mode': 0o644} in d"
"$SBX" files "$id" /home/user/nope >"$o" 2>"$e"
[ $? -ne 0 ] || fail "files of a missing dir exit 0"
expect_in "files missing" "$e" "NOT_FOUND"

step=ps
"$SBX" exec "$id" -- sleep 60 >/dev/null 2>&1 &
bgpid=$!
i=0
until "$SBX" ps "$id" >"$o" 2>"$e" && grep -q ' running  *sleep$' "$o"; do
	i=$((i + 1))
	[ $i -lt 100 ] || fail "ps never showed the running sleep"
	sleep 0.1
done
expect_in ps "$o" "PID"
expect_in ps "$o" "kill -9"
"$SBX" ps "$id" --json >"$o" || fail "ps --json exit $?"
json_check "$o" "any(p['running'] and p['command'] == 'sleep' for p in d)"
json_check "$o" "any(not p['running'] and p['command'] == 'cat' for p in d)"
kill "$bgpid"
wait "$bgpid"
bgpid=

step=timeout
"$SBX" timeout "$id" 60 >"$o" || fail "timeout exit $?"
expect_in timeout "$o" "$id"
"$SBX" get "$id" --json >"$o" || fail "get exit $?"
now_ms=$(($(date +%s) * 1000))
json_check "$o" "50000 <= d['deadline_ms'] - $now_ms <= 62000"
"$SBX" timeout "$id" 0 >"$o" 2>"$e"
[ $? -ne 0 ] || fail "timeout 0 exit 0"
expect_in "timeout 0" "$e" "INVALID_ARGUMENT"

step=kill
"$SBX" kill "$id" "$id2" >"$o" 2>"$e" || fail "kill exit $?"
"$SBX" get "$id" >"$o" 2>"$e"
rc=$?
[ $rc -ne 0 ] || fail "get after kill exit 0"
expect_in "get after kill" "$e" "NOT_FOUND"
[ -s "$o" ] && fail "get after kill wrote to stdout"
"$SBX" kill "$id" 2>"$e"
[ $? -ne 0 ] || fail "second kill exit 0"
expect_in "second kill" "$e" "NOT_FOUND"
"$SBX" ls >"$o" || fail "ls exit $?"
[ -s "$o" ] && fail "ls after kill: $(cat "$o")"
"$SBX" ls --all --json >"$o" || fail "ls --all exit $?"
json_check "$o" "[s['state'] for s in d if s['id'] == '$id'] == ['dead']"

step="run python"
cat >"$dir/script.py" <<'EOF'
import sys
print("hello from python", sys.version_info[0])
print("to stderr", file=sys.stderr)
sys.exit(3)
EOF
"$SBX" run --lang python --file "$dir/script.py" >"$o" 2>"$e"
expect_eq "run status" $? 3
expect_eq "run stdout" "$(cat "$o")" "hello from python 3"
expect_eq "run stderr" "$(cat "$e")" "to stderr"
"$SBX" ls >"$o" || fail "ls exit $?"
[ -s "$o" ] && fail "run left a sandbox: $(cat "$o")"

step="run -"
echo 'exit 4' | "$SBX" run - >"$o" 2>"$e"
expect_eq "run - status" $? 4
printf 'echo "$(id -un) in $(pwd)"\n' | "$SBX" run >"$o" 2>"$e" ||
	fail "run from stdin exit $?"
expect_eq "run - stdout" "$(cat "$o")" "user in /home/user"
# Create options apply to the run's sandbox.
echo 'echo "$FOO"' | "$SBX" run --env FOO=bar - >"$o" || fail "run --env"
expect_eq "run --env" "$(cat "$o")" bar
"$SBX" run --lang ruby - </dev/null >"$o" 2>"$e"
expect_eq "run --lang ruby status" $? 2
"$SBX" run --file "$dir/no-such-script" >"$o" 2>"$e"
expect_eq "run missing file status" $? 1
"$SBX" ls >"$o" || fail "ls exit $?"
[ -s "$o" ] && fail "run left a sandbox: $(cat "$o")"

step=usage
for args in "frobnicate" "--bogus health" "" "create --bogus" \
	"ls --nope" "exec" "get" "get a b" "timeout x y" "ps" "files" \
	"kill" "cp a" "create --label novalue" "exec --tty"; do
	# Word splitting of $args is wanted here.
	# shellcheck disable=SC2086
	"$SBX" $args >"$o" 2>"$e"
	expect_eq "sbx $args: status" $? 2
	expect_in "sbx $args" "$e" "usage: sbx"
	[ -s "$o" ] && fail "sbx $args wrote to stdout"
done
# Unknown commands are usage errors even with no daemon to talk to.
SBX_URL="ipc://$dir/no-such-socket" "$SBX" frobnicate >"$o" 2>"$e"
expect_eq "unknown command, no daemon" $? 2
expect_in "unknown command" "$e" "unknown command 'frobnicate'"
# A known command with no daemon: UNAVAILABLE, exit 1.
SBX_URL="ipc://$dir/no-such-socket" "$SBX" health >"$o" 2>"$e"
expect_eq "no daemon status" $? 1
expect_in "no daemon" "$e" "UNAVAILABLE"

step="daemon still healthy"
"$SBX" health --json >"$o" || fail "health exit $?"
json_check "$o" "d['sandboxes_running'] == 0"

step="stop sbxd"
kill -TERM "$daemon"
i=0
while running "$daemon"; do
	i=$((i + 1))
	[ $i -lt 300 ] || fail "sbxd did not stop in 30 s"
	sleep 0.1
done
wait "$daemon"
rc=$?
daemon=
expect_eq "sbxd exit status" $rc 0
grep -q 'SBX-STOPPED code=0' "$dir/sbxd.log" || fail "no SBX-STOPPED in log"

trap - EXIT INT TERM HUP
rm -rf "$dir"
echo "PASS"
exit 0
