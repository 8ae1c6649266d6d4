#!/usr/bin/env bash
# Stops the Postfix instance started by scripts/postfix/start.sh [DIR] (default DIR: $PWD/.postfix-run).
# Removes nothing: the configuration, queue, log and port file stay in DIR for inspection.
set -euo pipefail

SCRIPT=stop.sh
# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

# Not as_root: stopping needs no working Postfix installation (see the fallback below).
run_as_root "" "Postfix's master daemon runs as root" "$0" "${1:-$PWD/.postfix-run}"

stop_dir "${1:-$PWD/.postfix-run}"
ETC="$DIR/etc"
SPOOL="$DIR/spool"
stopped=""

if [ -f "$ETC/main.cf" ] && command -v postfix >/dev/null 2>&1; then
  if postfix -c "$ETC" status >/dev/null 2>&1; then
    # Sends SIGTERM to the master, waits up to 5 s for it, then kills its process group.
    postfix -c "$ETC" stop >&2 || true
    stopped=1
  fi
fi

# Fallback (a broken or missing configuration): the master of THIS instance is the process named in
# its pid file whose working directory is this instance's queue directory. Nothing else is touched.
pid="$(awk '{ print $1; exit }' "$SPOOL/pid/master.pid" 2>/dev/null || true)"
if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/cwd" 2>/dev/null || true)" = "$SPOOL" ]; then
  stop_pid "$pid" 5
  stopped=1
fi

if [ -n "$stopped" ]; then
  echo "postfix/stop.sh: stopped the instance in $DIR" >&2
else
  echo "postfix/stop.sh: no instance running in $DIR" >&2
fi
