# Shared by install.sh, start.sh and stop.sh: a private Exim 4 unpacked outside dpkg's database (Debian's
# MTA packages conflict with each other and Postfix is installed), run with its own configuration file.
# Source it after setting SCRIPT (the caller's name, for messages). Needs bash.

DAEMON=exim
# die, run_as_root, stop_dir, stop_pid, free_port, wait_banner: shared with scripts/postfix.
# shellcheck source=../lib/daemon.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/daemon.sh"

# Where install.sh unpacks the packages; the binary is $EXIM_ROOT/usr/sbin/exim4.
EXIM_ROOT="${EXIM_ROOT:-/opt/sluice-exim}"
EXIM_BIN="$EXIM_ROOT/usr/sbin/exim4"
# Debian's binary has this user compiled in (EXIM_USER=Debian-exim); exim4-base's postinst would create it.
EXIM_USER=Debian-exim

# Re-runs the calling script as root through `sudo -n` when needed, keeping EXIM_ROOT and the named
# variables. Usage: as_root "VAR1,VAR2" "$0" "$@"
as_root() {
  local keep="$1"
  shift
  run_as_root "EXIM_ROOT${keep:+,$keep}" "Exim's daemon binds as root and drops to $EXIM_USER" "$@"
}

need_install() {
  [ -x "$EXIM_BIN" ] || die "$EXIM_BIN not found: run scripts/exim/install.sh first (as root)"
  id "$EXIM_USER" >/dev/null 2>&1 || die "the '$EXIM_USER' user does not exist: run scripts/exim/install.sh"
}

# The pid of the daemon started from DIR ($1), or nothing: the pid in DIR/exim.pid, if that process is
# our binary running with DIR's configuration file.
daemon_pid() {
  local dir="$1" pid
  pid="$(cat "$dir/exim.pid" 2>/dev/null || true)"
  [ -n "$pid" ] || return 0
  if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-C $dir/etc/exim.conf"; then echo "$pid"; fi
}
