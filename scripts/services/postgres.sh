#!/usr/bin/env bash
# Brings up PostgreSQL for sessio's tests: 127.0.0.1:5432, user `postgres` trusted over
# local TCP. Idempotent: installs (apt-get) only if missing, starts only if not
# answering, changes authentication only if `postgres` cannot log in over TCP.
set -euo pipefail

log() { echo "postgres.sh: $*" >&2; }
answering() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
can_login() { psql -h 127.0.0.1 -p 5432 -U postgres -w -d postgres -Atc 'SELECT 1' >/dev/null 2>&1; }

if command -v pg_isready >/dev/null && answering && can_login; then
  exit 0
fi

if ! ls /etc/postgresql/*/main/pg_hba.conf >/dev/null 2>&1; then
  log "installing postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi

version=$(ls /etc/postgresql | sort -V | tail -n 1)
cluster_running() { pg_lsclusters -h 2>/dev/null | awk -v v="$version" '$1 == v && $2 == "main" && $4 == "online"' | grep -q .; }

if ! cluster_running; then
  log "starting cluster $version/main"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi

for _ in $(seq 1 60); do
  answering && break
  sleep 1
done
answering || { log "PostgreSQL does not answer on 127.0.0.1:5432"; exit 1; }

if ! can_login; then
  # Fresh install: only peer auth over the socket. Trust `postgres` over loopback TCP
  # (first matching line wins, so prepend). For a test machine only.
  hba=/etc/postgresql/$version/main/pg_hba.conf
  log "trusting user postgres on 127.0.0.1 and ::1 in $hba"
  {
    echo "host all postgres 127.0.0.1/32 trust"
    echo "host all postgres ::1/128 trust"
    cat "$hba"
  } >"$hba.sessio" && cat "$hba.sessio" >"$hba" && rm -f "$hba.sessio"
  pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  for _ in $(seq 1 20); do
    can_login && break
    sleep 0.5
  done
  can_login || { log "user postgres still cannot log in over TCP"; exit 1; }
fi
log "ready"
