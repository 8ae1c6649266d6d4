#!/usr/bin/env bash
# Starts a private, throwaway Postfix instance on 127.0.0.1 for sluice's interop tests.
#
#   scripts/postfix/start.sh [DIR]        (default DIR: $PWD/.postfix-run)
#
# - Never touches the system instance: its main.cf/master.cf are neither read nor needed (a machine
#   where debconf said "No configuration" is fine) and nothing under /etc/postfix is written.
#   Everything lives in DIR: DIR/etc (main.cf, master.cf, maps), DIR/spool (queue), DIR/data,
#   DIR/maillog (and maillog.1, the previous run's), DIR/port, DIR/tls (self-signed certificate).
# - Listens on 127.0.0.1 on a free port picked at start; discards every message it accepts.
# - Refuses exactly one recipient: rejected@example.com, with "550 5.1.1".
# - Idempotent: an instance already running from DIR is stopped first, then DIR is reconfigured.
# - Needs root (Postfix's master runs as root and drops to the "postfix" user); re-runs itself
#   through `sudo -n` when possible.
# - POSTFIX_DEBUG=1 logs every SMTP dialogue with 127.0.0.1 in full (debug_peer_list) to DIR/maillog.
#
# The last line of output is POSTFIX_PORT=NNNNN; the port is also written to DIR/port.
set -euo pipefail

SCRIPT=start.sh
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$HERE/lib.sh"

as_root "POSTFIX_DEBUG" "$0" "${1:-$PWD/.postfix-run}"

# 1. Stop a previous instance from this DIR (a stale one from an earlier run, or a second start).
prepare_dir "${1:-$PWD/.postfix-run}"

# 2. A self-signed certificate for STARTTLS (127.0.0.1 and localhost), when openssl is there.
TLS_CONF=""
if command -v openssl >/dev/null 2>&1; then
  mkdir -p "$DIR/tls"
  if [ ! -s "$DIR/tls/cert.pem" ] || [ ! -s "$DIR/tls/key.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
      -keyout "$DIR/tls/key.pem" -out "$DIR/tls/cert.pem" \
      -subj "/CN=localhost" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" >/dev/null 2>&1 ||
      { rm -f "$DIR/tls/cert.pem" "$DIR/tls/key.pem"; echo "postfix/start.sh: openssl failed: STARTTLS off" >&2; }
  fi
  if [ -s "$DIR/tls/cert.pem" ]; then
    chmod 600 "$DIR/tls/key.pem"
    chmod 644 "$DIR/tls/cert.pem"
    TLS_CONF="smtpd_tls_security_level = may
smtpd_tls_cert_file = $DIR/tls/cert.pem
smtpd_tls_key_file = $DIR/tls/key.pem
smtpd_tls_loglevel = 1"
  fi
fi
[ -n "$TLS_CONF" ] || rm -f "$DIR/tls/cert.pem" "$DIR/tls/key.pem" 2>/dev/null || true
[ -n "$TLS_CONF" ] || TLS_CONF="smtpd_tls_security_level = none"

DEBUG_CONF=""
if [ -n "${POSTFIX_DEBUG:-}" ] && [ "${POSTFIX_DEBUG}" != 0 ]; then
  DEBUG_CONF="debug_peer_list = 127.0.0.1
debug_peer_level = 2"
fi

write_config() {
  local port="$1"
  printf '%s\n' 'rejected@example.com 550 5.1.1 No such user' >"$ETC/recipient_access"
  # Body lines that start with "." are logged as Postfix saw them (after DATA's dot-unstuffing): the
  # tests read them back to check dot-stuffing (DATA) and its absence (BDAT).
  printf '%s\n' '/^(\..*)$/ WARN dot-line' >"$ETC/body_checks"
  {
    main_cf_base postfix.sluice.test "sluice interop"
    cat <<EOF
# Throw away everything accepted. No DNS.
default_transport = discard:discarded
relay_transport = discard:discarded
local_transport = discard:discarded
virtual_transport = discard:discarded
smtpd_peername_lookup = no
smtpd_helo_required = no
smtpd_client_restrictions =
smtpd_helo_restrictions =
smtpd_sender_restrictions =
smtpd_data_restrictions =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
# One recipient is refused: rejected@example.com -> 550 5.1.1.
smtpd_recipient_restrictions = check_recipient_access texthash:$ETC/recipient_access, permit_mynetworks, reject

body_checks = regexp:$ETC/body_checks
# Unique queue ids ("250 2.0.0 Ok: queued as ID"): the tests match replies to log lines with them.
enable_long_queue_ids = yes

# Extensions: PIPELINING, SIZE, 8BITMIME, DSN, SMTPUTF8, CHUNKING are Postfix defaults; spelt out.
smtputf8_enable = yes
smtpd_discard_ehlo_keywords =
message_size_limit = 10240000
# Strict like Postfix >= 3.9 about clients that pipeline where RFC 2920 does not allow it (they are
# disconnected with "554 5.5.0 Error: SMTP protocol synchronization").
smtpd_forbid_unauth_pipelining = yes
# Strict about bare LF (the oracle for sluice's CRLF normalisation), loopback included.
smtpd_forbid_bare_newline = reject
smtpd_forbid_bare_newline_exclusions =

# Fast: no tarpitting, no rate limits, no inflow throttle.
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 10000
smtpd_hard_error_limit = 10000
smtpd_junk_command_limit = 100000
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_client_new_tls_session_rate_limit = 0
smtpd_client_auth_rate_limit = 0
in_flow_delay = 0
default_process_limit = 200
biff = no

$TLS_CONF
$DEBUG_CONF
EOF
  } >"$ETC/main.cf"
  # chroot "n" everywhere: the instance lives in DIR, not in a jail.
  chmod 644 "$ETC/main.cf" "$ETC/recipient_access" "$ETC/body_checks"
}

# 3. Configure and start, on a fresh free port.
start_on_free_port "sluice interop"
echo "postfix/start.sh: Postfix $(postconf -c "$ETC" -h mail_version) on 127.0.0.1:$PORT, config $ETC, log $LOG" >&2
echo "POSTFIX_PORT=$PORT"
