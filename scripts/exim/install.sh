#!/usr/bin/env bash
# Unpacks Debian 12's Exim 4 (exim4-daemon-heavy: PIPELINING, CHUNKING, GnuTLS, plaintext AUTH) into
# EXIM_ROOT (default /opt/sluice-exim) for sluice's interop tests, without installing it: Debian's MTA
# packages conflict with each other, and Postfix is installed. Nothing under /etc, /var or /usr is
# written except the ordinary shared libraries Exim links against (installed with apt-get) and the
# Debian-exim system user the binary has compiled in.
#
#   sudo scripts/exim/install.sh
#
# Idempotent: does nothing when EXIM_ROOT already holds a working binary and the user exists.
set -euo pipefail

SCRIPT=install.sh
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$HERE/lib.sh"

as_root "" "$0" "$@"

# 1. The user (and group) the binary runs as once it drops root.
if ! getent group "$EXIM_USER" >/dev/null; then groupadd --system "$EXIM_USER"; fi
if ! id "$EXIM_USER" >/dev/null 2>&1; then
  useradd --system --gid "$EXIM_USER" --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin "$EXIM_USER"
fi

if [ -x "$EXIM_BIN" ] && "$EXIM_BIN" -bV -C /dev/null >/dev/null 2>&1; then
  echo "exim/install.sh: $("$EXIM_BIN" -bV -C /dev/null 2>/dev/null | head -n 1) already in $EXIM_ROOT" >&2
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "apt-get not found (this script is for Debian 12)"
export DEBIAN_FRONTEND=noninteractive
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
# `apt-get download` needs package lists; update them once if the download fails without.
apt-get download exim4-daemon-heavy exim4-base exim4-config >&2 || { apt-get update >&2 && apt-get download exim4-daemon-heavy exim4-base exim4-config >&2; }

# 2. The libraries: the daemon's Depends that are shared libraries (never the exim4-* packages or
# adduser/cron/debconf, which are only for the installed package's scripts), and only those not
# installed yet (naming an installed package to apt-get would upgrade it). apt resolves theirs.
deps() { dpkg-deb -f "$1" Depends | tr ',' '\n' | sed -E 's/\(.*\)//; s/\|.*//; s/[[:space:]]//g' | grep -E '^lib' || true; }
missing_libs=""
for lib in $(deps exim4-daemon-heavy_*.deb) $(deps exim4-base_*.deb); do
  dpkg-query -W -f='${Status}' "$lib" 2>/dev/null | grep -q 'install ok installed' || missing_libs="$missing_libs $lib"
done
if [ -n "$missing_libs" ]; then
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing_libs >&2
fi

# 3. Unpack (dpkg -x keeps the set-uid bit of the binary when run as root).
mkdir -p "$EXIM_ROOT"
for deb in exim4-daemon-heavy_*.deb exim4-base_*.deb exim4-config_*.deb; do dpkg -x "$deb" "$EXIM_ROOT"; done

missing="$(ldd "$EXIM_BIN" | awk '/not found/ { print $1 }')"
[ -z "$missing" ] || die "libraries still missing for $EXIM_BIN: $missing"
"$EXIM_BIN" -bV -C /dev/null >/dev/null 2>&1 || die "$EXIM_BIN -bV failed: $("$EXIM_BIN" -bV -C /dev/null 2>&1 | head -n 3)"
echo "exim/install.sh: $("$EXIM_BIN" -bV -C /dev/null 2>/dev/null | head -n 1) unpacked in $EXIM_ROOT" >&2
