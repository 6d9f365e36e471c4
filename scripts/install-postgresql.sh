#!/usr/bin/env bash
# PostgreSQL server binaries for the store tests (tests/apis start their own private server with
# initdb + postgres as an unprivileged user; nothing here starts one). Debian's package, where missing.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; then
    echo "PostgreSQL present: $(compgen -G '/usr/lib/postgresql/*/bin/postgres' | head -1)"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "PostgreSQL is missing; as root: apt-get install -y postgresql" >&2
    exit 1
fi
# The package would create and start a system-wide cluster on port 5432; the tests need none.
mkdir -p /etc/postgresql-common
echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold postgresql >/dev/null
compgen -G "/usr/lib/postgresql/*/bin/postgres"
