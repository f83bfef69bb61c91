# shellcheck shell=bash
# Sourced by .ci/run (bash, set -euo pipefail): makes a PostgreSQL server
# available on a fresh Debian 12 machine, creates a login role and a database
# of this run's own, and exports MOBILEID_TEST_POSTGRES for the store tests.
# Must run as root. The caller calls pg_ci_cleanup from its EXIT trap, which
# drops them again; the server is left running for whoever uses it next.

# Defined first, so that the caller's trap finds it even if the setup below
# fails halfway.
pg_ci_cleanup() {
	if [ -z "${pg_ci_role:-}" ]; then
		return 0
	fi
	# WITH (FORCE) ends sessions a killed test may have left behind.
	pg_ci_psql >/dev/null 2>&1 <<-SQL || echo "warning: could not drop PostgreSQL database and role ${pg_ci_role}" >&2
		DROP DATABASE IF EXISTS ${pg_ci_role} WITH (FORCE);
		DROP ROLE IF EXISTS ${pg_ci_role};
	SQL
	pg_ci_role=
	return 0
}

# pg_ci_psql runs psql as the postgres superuser over the local socket (peer
# authentication), from / because postgres may not read the working directory.
pg_ci_psql() {
	(cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d postgres "$@")
}

# pg_ci_hex prints n random bytes as hex: safe in identifiers and URLs.
pg_ci_hex() {
	od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
	echo "installing PostgreSQL" >&2
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

pg_ci_version=$(pg_lsclusters -h | awk '$2 == "main" { print $1 }' | sort -V | tail -n 1)
if [ -z "$pg_ci_version" ]; then
	echo "no PostgreSQL cluster named main (pg_lsclusters)" >&2
	return 1
fi
pg_ci_port=$(pg_lsclusters -h | awk -v v="$pg_ci_version" '$1 == v && $2 == "main" { print $3 }')

if ! pg_ctlcluster "$pg_ci_version" main status >/dev/null 2>&1; then
	pg_ctlcluster --skip-systemctl-redirect "$pg_ci_version" main start
fi
for _ in $(seq 30); do
	if pg_isready -q -h 127.0.0.1 -p "$pg_ci_port"; then
		break
	fi
	sleep 1
done
if ! pg_isready -q -h 127.0.0.1 -p "$pg_ci_port"; then
	echo "PostgreSQL $pg_ci_version did not accept connections on 127.0.0.1:$pg_ci_port within 30 s" >&2
	return 1
fi

# Set before creating anything, so that cleanup also undoes a partial setup.
pg_ci_role="mobileid_ci_$(pg_ci_hex 6)"
pg_ci_password=$(pg_ci_hex 16)
# The password goes through stdin rather than the command line, where ps
# would show it.
pg_ci_psql <<-SQL
	CREATE ROLE ${pg_ci_role} LOGIN PASSWORD '${pg_ci_password}';
	CREATE DATABASE ${pg_ci_role} OWNER ${pg_ci_role};
SQL
export MOBILEID_TEST_POSTGRES="postgres://${pg_ci_role}:${pg_ci_password}@127.0.0.1:${pg_ci_port}/${pg_ci_role}?sslmode=disable"
unset pg_ci_password
