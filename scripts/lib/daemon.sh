# Shared by scripts/postfix and scripts/exim: what running a private, throwaway MTA for the interop
# tests needs whatever the MTA is (messages, the root check, the instance directory to stop, stopping a
# process, a free port, waiting for the banner). Source it after setting DAEMON (the scripts' folder:
# postfix, exim) and SCRIPT (the caller's name), both for messages. Needs bash.

# The MTAs' tools and useradd live in the sbin directories, which a user's PATH (kept through sudo) may lack.
export PATH="$PATH:/usr/sbin:/sbin"

die() {
  echo "$DAEMON/$SCRIPT: $*" >&2
  exit 1
}

# Re-runs the calling script as root through `sudo -n` when needed, keeping PATH and the named
# variables. Usage: run_as_root "VAR1,VAR2" "why root is needed" "$0" "$@"
run_as_root() {
  local keep="$1" why="$2"
  shift 2
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      exec sudo -n --preserve-env="PATH${keep:+,$keep}" "$@"
    fi
    die "must run as root ($why), and sudo -n is not available"
  fi
}

# For stop.sh: sets DIR to the absolute instance directory $1, or ends the script (status 0) when there
# is no such directory, so nothing to stop.
stop_dir() {
  DIR="$1"
  if [ ! -d "$DIR" ]; then
    echo "$DAEMON/$SCRIPT: $DIR does not exist: nothing to stop" >&2
    exit 0
  fi
  DIR="$(cd "$DIR" && pwd -P)"
}

# Sends SIGTERM to the process $1, waits up to $2 seconds (default 5) for it to end, then sends SIGKILL.
# The caller has checked that $1 is the process it means (its pid file alone is no proof).
stop_pid() {
  local pid="$1" tries=$((${2:-5} * 4))
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 "$tries"); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.25
  done
  kill -9 "$pid" 2>/dev/null || true
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

# Waits for the 220 greeting, carrying the banner tag $2 in parentheses, on 127.0.0.1:$1.
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
