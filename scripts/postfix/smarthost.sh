#!/usr/bin/env bash
# Starts a private, throwaway Postfix instance on 127.0.0.1 configured as a smarthost: it accepts mail
# from loopback for any domain and relays all of it to one upstream (relayhost = [HOST]:PORT).
# Used by @sluice/relay's benchmark (packages/relay/bench/relay-bench.ts) as the comparison with Debian's
# Postfix doing the job sluice-relay does.
#
#   scripts/postfix/smarthost.sh DIR UPSTREAM_PORT [UPSTREAM_HOST]    (UPSTREAM_HOST: 127.0.0.1)
#   scripts/postfix/stop.sh DIR                                       (stops it; removes nothing)
#
# - Same ground rules as start.sh: never touches the system instance (nothing under /etc/postfix is
#   read or written), everything lives in DIR (DIR/etc, DIR/spool, DIR/data, DIR/maillog, DIR/port),
#   chroot off, logs through postlogd to DIR/maillog (the previous run's in DIR/maillog.1).
# - Idempotent: an instance already running from DIR is stopped first, and its queue is thrown away
#   (so that messages left over from an interrupted run are not delivered into the next one).
# - Toward the upstream: no TLS, no DNS, connection caching on demand (the default), up to
#   SMARTHOST_CONCURRENCY (20) connections, SMARTHOST_REUSE (50) messages per connection, PIPELINING
#   (the default). SMARTHOST_INITIAL_CONCURRENCY (Postfix's default, 5) is where Postfix's
#   per-destination concurrency starts before it ramps up to the limit.
# - Needs root (Postfix's master runs as root and drops to the "postfix" user); re-runs itself
#   through `sudo -n` when possible.
#
# The last line of output is POSTFIX_PORT=NNNNN; the port is also written to DIR/port.
set -euo pipefail

SCRIPT=smarthost.sh
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$HERE/lib.sh"

[ $# -ge 2 ] || die "usage: $0 DIR UPSTREAM_PORT [UPSTREAM_HOST]"
as_root "SMARTHOST_CONCURRENCY,SMARTHOST_REUSE,SMARTHOST_INITIAL_CONCURRENCY" "$0" "$@"

DIR="$1"
UPSTREAM_PORT="$2"
UPSTREAM_HOST="${3:-127.0.0.1}"
[[ "$UPSTREAM_PORT" =~ ^[0-9]+$ ]] || die "UPSTREAM_PORT must be a number: $UPSTREAM_PORT"
[[ "$UPSTREAM_HOST" =~ ^[0-9.]+$ ]] || die "UPSTREAM_HOST must be an IPv4 address (no DNS): $UPSTREAM_HOST"
CONCURRENCY="${SMARTHOST_CONCURRENCY:-20}"
REUSE="${SMARTHOST_REUSE:-50}"
INITIAL="${SMARTHOST_INITIAL_CONCURRENCY:-5}"
[ "$INITIAL" -le "$CONCURRENCY" ] || INITIAL="$CONCURRENCY"

# 1. Stop a previous instance from this DIR, and drop its queue.
prepare_dir "$DIR" fresh-queue

write_config() {
  local port="$1"
  {
    main_cf_base smarthost.sluice.test "sluice smarthost"
    cat <<EOF
# A smarthost: relay everything accepted from loopback to the upstream.
relayhost = [$UPSTREAM_HOST]:$UPSTREAM_PORT
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject
smtpd_peername_lookup = no
biff = no

# To the upstream: no TLS, no DNS (a literal IP in brackets: no MX and no host lookup either).
smtp_tls_security_level = none
disable_dns_lookups = yes
smtp_host_lookup = native
smtp_helo_name = \$myhostname

# As sluice-relay: $CONCURRENCY connections, $REUSE messages per connection. PIPELINING is used whenever
# the upstream offers it (Postfix has no switch for it, only smtp_discard_ehlo_keywords).
default_destination_concurrency_limit = $CONCURRENCY
initial_destination_concurrency = $INITIAL
smtp_connection_cache_on_demand = yes
smtp_connection_reuse_count_limit = $REUSE

# No throttling in either direction; short queue runs and retries.
smtpd_error_sleep_time = 0
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_client_new_tls_session_rate_limit = 0
smtpd_client_auth_rate_limit = 0
in_flow_delay = 0
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 10s
default_process_limit = 200
smtpd_tls_security_level = none
EOF
  } >"$ETC/main.cf"
  # chroot "n" everywhere: the instance lives in DIR, not in a jail.
  chmod 644 "$ETC/main.cf"
}

start_on_free_port "sluice smarthost"
echo "postfix/smarthost.sh: Postfix $(postconf -c "$ETC" -h mail_version) on 127.0.0.1:$PORT relaying to [$UPSTREAM_HOST]:$UPSTREAM_PORT ($CONCURRENCY connections, $REUSE messages each), config $ETC, log $LOG" >&2
echo "POSTFIX_PORT=$PORT"
