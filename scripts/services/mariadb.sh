#!/usr/bin/env bash
# Brings up MariaDB for sessio's tests: 127.0.0.1:3306, user `root` with an empty
# password over TCP. Idempotent: installs (apt-get) only if missing, starts only if not
# answering, changes accounts only if root cannot log in over TCP.
set -euo pipefail

log() { echo "mariadb.sh: $*" >&2; }
# `mysqladmin ping` exits 0 whenever the server answers, even if access is denied.
answering() { mysqladmin --protocol=tcp -h 127.0.0.1 -P 3306 -uroot --connect-timeout=2 ping >/dev/null 2>&1; }
can_login() { mysql --protocol=tcp -h 127.0.0.1 -P 3306 -uroot -e 'SELECT 1' >/dev/null 2>&1; }

if command -v mysqladmin >/dev/null && answering && can_login; then
  exit 0
fi

if [ ! -x /usr/sbin/mariadbd ]; then
  log "installing mariadb-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq mariadb-server >/dev/null
fi

if ! answering; then
  log "starting mariadbd"
  mkdir -p /run/mysqld
  chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  for _ in $(seq 1 60); do
    answering && break
    sleep 1
  done
fi
answering || { log "MariaDB does not answer on 127.0.0.1:3306"; exit 1; }

if ! can_login; then
  # Fresh install: root logs in through the unix socket only. Allow an empty password
  # over loopback TCP as well. For a test machine only.
  log "allowing root with an empty password on 127.0.0.1"
  mysql -uroot <<'SQL'
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
FLUSH PRIVILEGES;
SQL
  can_login || { log "root still cannot log in over TCP"; exit 1; }
fi
log "ready"
