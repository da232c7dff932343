#!/usr/bin/env bash
# Install and start what the project needs on a Debian/Ubuntu machine, idempotently:
# PostgreSQL (and pgBackRest), Redis, RabbitMQ (with its management and Prometheus plugins),
# nginx, Node, and the Python and Node environments; with --tests also what only the tests use
# (Chromium, promtool, Prometheus, jq for Consul's ACL bootstrap script).
# Anything already installed or running is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v psql >/dev/null 2>&1 && command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql postgresql-client)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v rabbitmq-server >/dev/null 2>&1 || missing+=(rabbitmq-server)
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
command -v pgbackrest >/dev/null 2>&1 || missing+=(pgbackrest)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ "${1:-}" = "--tests" ]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v jq >/dev/null 2>&1 || missing+=(jq)
fi
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  as_root apt-get update -qq
  # Installed to be run by us, not as daemons: no package starts a service of its own here.
  printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
  as_root chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
  as_root rm -f /usr/sbin/policy-rc.d
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  say "starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start
  for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
fi
if ! psql -h 127.0.0.1 -U postgres -tAc 'SELECT 1' >/dev/null 2>&1; then
  echo "PostgreSQL answers but user 'postgres' cannot log in over TCP without a password." >&2
  echo "Allow it (trust for 127.0.0.1 in pg_hba.conf) or set *_DATABASE_URL with a password." >&2
  exit 1
fi

# A dev stack and a test stack (six services each, a pool per service) need more than the
# default 100 connections.
if [ "$(psql -h 127.0.0.1 -U postgres -tAc 'SHOW max_connections')" -lt 300 ]; then
  say "raising PostgreSQL max_connections to 300 (restarts PostgreSQL once)"
  psql -h 127.0.0.1 -U postgres -qc 'ALTER SYSTEM SET max_connections = 300'
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main restart
  for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  say "starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ecommerce.log
  for _ in $(seq 1 50); do redis-cli ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

if ! as_root rabbitmqctl -q status >/dev/null 2>&1; then
  say "starting RabbitMQ"
  as_root rabbitmq-server -detached
fi
as_root rabbitmqctl -q await_startup --timeout 60 >/dev/null
for plugin in rabbitmq_management rabbitmq_prometheus; do
  if ! as_root rabbitmq-plugins -q is_enabled "$plugin" >/dev/null 2>&1; then
    say "enabling the RabbitMQ plugin $plugin"
    as_root rabbitmq-plugins -q enable "$plugin" >/dev/null
  fi
done
# The tests use a vhost of their own, so a running dev stack never sees their messages.
if ! as_root rabbitmqctl -q list_vhosts | grep -qx ecommerce_test; then
  as_root rabbitmqctl -q add_vhost ecommerce_test >/dev/null
fi
as_root rabbitmqctl -q set_permissions -p ecommerce_test guest '.*' '.*' '.*' >/dev/null

if command -v uv >/dev/null 2>&1; then
  uv=(uv)
else
  python3 -m uv --version >/dev/null 2>&1 || {
    say "installing uv"
    python3 -m pip install --quiet --disable-pip-version-check uv
  }
  uv=(python3 -m uv)
fi
"${uv[@]}" sync --frozen --quiet

# Node packages, exactly as package-lock.json pins them; reinstalled only when the lock changed.
if ! cmp -s package-lock.json node_modules/.installed-lock 2>/dev/null; then
  say "installing the Node packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  cp package-lock.json node_modules/.installed-lock
fi
# The storefront (web/), type-checked and built into web/dist, which the gateway serves; again
# only when a source changed since the last build.
if [ ! -f web/dist/index.html ] || [ -n "$(find web/src web/index.html web/vite.config.ts \
  web/tsconfig.json package-lock.json -newer web/dist/index.html -print -quit)" ]; then
  say "building the storefront (web/ into web/dist)"
  if ! built=$(npm run --silent build 2>&1); then
    echo "$built" >&2
    exit 1
  fi
fi
