#!/usr/bin/env bash
# Make sure a PostgreSQL server answers at 127.0.0.1:5432 for user postgres without a password
# (the tests create and drop a database of their own). Start it if installed, install it if not.
set -euo pipefail

ready() { pg_isready -q -h 127.0.0.1 -p 5432 -U postgres 2>/dev/null; }
can_login() { psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; }

if command -v pg_isready >/dev/null && ready && can_login; then
  exit 0
fi

if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  echo "PostgreSQL not installed: installing it from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi

version=$(ls /etc/postgresql | sort -V | tail -1)
conf=/etc/postgresql/$version/main
# trust on loopback for the test user, as on the developers' machines
if ! grep -q '^host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"; then
  sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all postgres trust' "$conf/pg_hba.conf"
fi
pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || \
  pg_ctlcluster --skip-systemctl-redirect "$version" main reload 2>/dev/null || true

for _ in $(seq 1 30); do
  if ready && can_login; then exit 0; fi
  sleep 1
done
echo "PostgreSQL did not come up at 127.0.0.1:5432" >&2
exit 1
