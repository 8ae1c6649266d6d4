# Shared by install.sh, start.sh and stop.sh: a private Exim 4 unpacked outside dpkg's database (Debian's
# MTA packages conflict with each other and Postfix is installed), run with its own configuration file.
# Source it after setting SCRIPT (the caller's name, for messages). Needs bash.

export PATH="$PATH:/usr/sbin:/sbin"

# Where install.sh unpacks the packages; the binary is $EXIM_ROOT/usr/sbin/exim4.
EXIM_ROOT="${EXIM_ROOT:-/opt/sluice-exim}"
EXIM_BIN="$EXIM_ROOT/usr/sbin/exim4"
# Debian's binary has this user compiled in (EXIM_USER=Debian-exim); exim4-base's postinst would create it.
EXIM_USER=Debian-exim

die() {
  echo "exim/$SCRIPT: $*" >&2
  exit 1
}

# Re-runs the calling script as root through `sudo -n` when needed, keeping the named variables.
# Usage: as_root "VAR1,VAR2" "$0" "$@"
as_root() {
  local keep="$1"
  shift
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      exec sudo -n --preserve-env="PATH,EXIM_ROOT,$keep" "$@"
    fi
    die "must run as root (Exim's daemon binds as root and drops to $EXIM_USER), and sudo -n is not available"
  fi
}

need_install() {
  [ -x "$EXIM_BIN" ] || die "$EXIM_BIN not found: run scripts/exim/install.sh first (as root)"
  id "$EXIM_USER" >/dev/null 2>&1 || die "the '$EXIM_USER' user does not exist: run scripts/exim/install.sh"
}

free_port() {
  if command -v node >/dev/null 2>&1; then
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});'
  elif command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'
  else
    die "need node or python3 to pick a free port"
  fi
}

# The pid of the daemon started from DIR ($1), or nothing: the pid in DIR/exim.pid, if that process is
# our binary running with DIR's configuration file.
daemon_pid() {
  local dir="$1" pid
  pid="$(cat "$dir/exim.pid" 2>/dev/null || true)"
  [ -n "$pid" ] || return 0
  if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-C $dir/etc/exim.conf"; then echo "$pid"; fi
}

# Waits for the 220 greeting, carrying the banner tag $2, on 127.0.0.1:$1.
wait_banner() {
  local port="$1" tag="$2" line
  for _ in $(seq 1 50); do
    # (The braces keep "2>/dev/null" from sticking to the shell: `exec` with only redirections is permanent.)
    if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
      if IFS= read -r -t 5 line <&3 && [[ "$line" == "220 "*"($tag)"* ]]; then
        printf 'QUIT\r\n' >&3 || true
        exec 3<&- 3>&-
        return 0
      fi
      exec 3<&- 3>&- || true
    fi
    sleep 0.2
  done
  return 1
}
