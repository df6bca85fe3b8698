#!/usr/bin/env bash
# Prepares the machine's PostgreSQL 15 cluster (15/main, 127.0.0.1:5432) for
# the tests of internal/trigger/postgres: starts it if it is down and turns on
# logical replication (wal_level=logical, at least 10 replication slots and
# WAL senders), restarting it when a setting changed. Idempotent; run as root.
set -euo pipefail

version=15
cluster=main
bin="/usr/lib/postgresql/$version/bin"
psql=(runuser -u postgres -- psql -X -q -At -h 127.0.0.1 -p 5432 -d postgres)

ctl() { pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" "$@"; }

wait_ready() {
	for _ in $(seq 100); do
		if "$bin/pg_isready" -q -h 127.0.0.1 -p 5432; then return 0; fi
		sleep 0.2
	done
	echo "postgres.sh: PostgreSQL $version/$cluster does not accept connections" >&2
	exit 1
}

did=()
if ! "$bin/pg_isready" -q -h 127.0.0.1 -p 5432; then
	# "start" fails if the cluster is already up but not yet accepting
	# connections; the wait below covers that case.
	ctl start || true
	did+=("started $version/$cluster")
fi
wait_ready

restart=false
if [ "$("${psql[@]}" -c 'SHOW wal_level')" != logical ]; then
	"${psql[@]}" -c "ALTER SYSTEM SET wal_level = logical"
	did+=("set wal_level=logical")
	restart=true
fi
for setting in max_replication_slots max_wal_senders; do
	if [ "$("${psql[@]}" -c "SHOW $setting")" -lt 10 ]; then
		"${psql[@]}" -c "ALTER SYSTEM SET $setting = 10"
		did+=("set $setting=10")
		restart=true
	fi
done
if $restart; then
	ctl restart
	did+=("restarted $version/$cluster")
	wait_ready
fi

if [ ${#did[@]} -eq 0 ]; then
	did+=("nothing to do")
fi
summary=$(IFS=,; echo "${did[*]}")
echo "postgres.sh: ${summary//,/, }; wal_level=$("${psql[@]}" -c 'SHOW wal_level') on 127.0.0.1:5432"
