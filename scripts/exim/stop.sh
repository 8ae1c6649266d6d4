#!/usr/bin/env bash
# Stops the Exim daemon started by scripts/exim/start.sh [DIR] (default DIR: $PWD/.exim-run).
# Removes nothing: the configuration, queue, log and stored messages stay in DIR for inspection.
# Only the daemon of THIS instance is signalled: the pid in DIR/exim.pid, if that process runs our
# binary with DIR's configuration file.
set -euo pipefail

SCRIPT=stop.sh
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$HERE/lib.sh"

as_root "" "$0" "${1:-$PWD/.exim-run}"

stop_dir "${1:-$PWD/.exim-run}"
pid="$(daemon_pid "$DIR")"
if [ -z "$pid" ]; then
  echo "exim/stop.sh: no instance running in $DIR" >&2
  exit 0
fi
# SIGTERM stops the daemon; sessions and deliveries it forked finish on their own.
stop_pid "$pid" 10
rm -f "$DIR/exim.pid"
echo "exim/stop.sh: stopped the instance in $DIR" >&2
