#!/usr/bin/env bash
# Stops the Postfix instance started by scripts/postfix/start.sh [DIR] (default DIR: $PWD/.postfix-run).
# Removes nothing: the configuration, queue, log and port file stay in DIR for inspection.
set -euo pipefail

export PATH="$PATH:/usr/sbin:/sbin"

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    exec sudo -n --preserve-env=PATH "$0" "${1:-$PWD/.postfix-run}"
  fi
  echo "postfix/stop.sh: must run as root, and sudo -n is not available" >&2
  exit 1
fi

DIR="${1:-$PWD/.postfix-run}"
if [ ! -d "$DIR" ]; then
  echo "postfix/stop.sh: $DIR does not exist: nothing to stop" >&2
  exit 0
fi
DIR="$(cd "$DIR" && pwd -P)"
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
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 20); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  stopped=1
fi

if [ -n "$stopped" ]; then
  echo "postfix/stop.sh: stopped the instance in $DIR" >&2
else
  echo "postfix/stop.sh: no instance running in $DIR" >&2
fi
