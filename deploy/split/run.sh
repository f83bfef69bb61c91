#!/usr/bin/env bash
# Runs each role of mobileid as its own process, over PostgreSQL, with the
# configuration files of this directory (docs/deploy.md).
#
#   MOBILEID_DSN=postgres://user:pw@127.0.0.1:5432/mobileid deploy/split/run.sh start
#   deploy/split/run.sh status
#   deploy/split/run.sh stop
#
# start makes, on its first run, what the roles need (the CA key ceremony,
# a SIM batch, the APs, an officer, a relying party) and the secrets, in the
# state directory; then it starts the CA, the network, the MSSP, the
# Registration Server, the ID Server and the demo bank in that order, each when the one
# before answers /readyz, and prints the URLs. The roles run in the state
# directory, so the relative paths of the configuration files are there.
#
# Environment:
#   MOBILEID_DSN         the PostgreSQL database (required for start)
#   MOBILEID_STATE       state directory (default deploy/split/state)
#   MOBILEID_SPLIT_CONF  directory of the *.conf files (default this one)
#   MOBILEID_BIN         the mobileid binary (default: built into the state directory)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
conf=$(cd "${MOBILEID_SPLIT_CONF:-$here}" && pwd)
state=${MOBILEID_STATE:-$here/state}
roles=(ca network mssp registration idserver bank)

die() { echo "run.sh: $*" >&2; exit 1; }

# conf_value prints the value of key in a role's configuration file.
conf_value() {
	awk -F' *= *' -v k="$2" '$1 == k { print $2; exit }' "$conf/$1.conf"
}

# health_addr prints the host:port whose /readyz says a role is ready: the
# MSSP answers it on its plain-HTTP metrics listener.
health_addr() {
	case "$1" in
	ca) conf_value ca listen ;;
	network) conf_value network http ;;
	mssp) conf_value mssp metrics ;;
	*) conf_value "$1" listen ;;
	esac
}

# ready reports whether GET /readyz on host:port answers 200, with bash's
# own TCP client, so that nothing else needs installing.
ready() {
	local host=${1%:*} port=${1##*:} status
	{ exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null || return 1
	printf 'GET /readyz HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" >&3
	read -r _ status _ <&3 || status=
	exec 3<&- 3>&-
	[ "$status" = 200 ]
}

pid_alive() { [ -f "$state/$1.pid" ] && kill -0 "$(cat "$state/$1.pid")" 2>/dev/null; }

bootstrap() {
	local bin=$1
	cd "$state"
	if [ ! -f secrets.env ]; then
		umask 077
		rand() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
		cat >secrets.env <<-EOF
			MOBILEID_CA_KEY=$(rand 32)
			MOBILEID_MSSP_KEY=$(rand 32)
			MOBILEID_OIDC_KEK=$(rand 32)
			MOBILEID_OIDC_SUBJECT_KEY=$(rand 32)
			MOBILEID_SMSC_PASSWORD=$(rand 4)
			REGISTRATION_AP_PASSWORD=$(rand 16)
			IDSERVER_AP_PASSWORD=$(rand 16)
			OFFICER_PASSWORD=$(rand 8)
		EOF
		umask 022
	fi
	set -a
	# shellcheck disable=SC1091
	source secrets.env
	set +a
	[ -f .bootstrapped ] && return 0
	echo "first start: making the CA, the SIMs, the APs, an officer and a relying party in $state"
	[ -d ca ] || "$bin" ca init --dir ca --base-url "$(conf_value ca base-url)" >/dev/null
	[ -d sims ] || "$bin" sim issue --out sims --count 10 --msisdn-from +37250000001 >/dev/null
	"$bin" mssp import-sims sims/operator.csv >/dev/null
	MOBILEID_AP_PASSWORD=$REGISTRATION_AP_PASSWORD "$bin" mssp ap add \
		--id "$(conf_value registration ap-id)" --name "Mobile ID registration" >/dev/null
	MOBILEID_AP_PASSWORD=$IDSERVER_AP_PASSWORD "$bin" mssp ap add \
		--id "$(conf_value idserver ap-id)" --name "Mobile ID" >/dev/null
	MOBILEID_OFFICER_PASSWORD=$OFFICER_PASSWORD "$bin" registration officer add officer \
		--name "Demo Officer" --desk "Demo desk" >/dev/null
	"$bin" idserver rp add --name "$(conf_value bank rp-name)" --oidc-client-id "$(conf_value bank client-id)" \
		--redirect-uris "$(conf_value bank public-url)/callback" --ciba >rp.txt
	chmod 600 rp.txt
	touch .bootstrapped
}

start() {
	[ -n "${MOBILEID_DSN:-}" ] || die "set MOBILEID_DSN to the PostgreSQL database, e.g. postgres://user:pw@127.0.0.1:5432/mobileid"
	mkdir -p "$state/logs"
	local bin=${MOBILEID_BIN:-$state/mobileid}
	if [ -z "${MOBILEID_BIN:-}" ]; then
		(cd "$here/../.." && go build -o "$bin" ./cmd/mobileid)
	fi
	bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
	bootstrap "$bin"
	for role in "${roles[@]}"; do
		if pid_alive "$role"; then
			echo "$role already running (pid $(cat "$state/$role.pid"))"
			continue
		fi
		local env=()
		case "$role" in
		registration) env=(MOBILEID_AP_PASSWORD="$REGISTRATION_AP_PASSWORD") ;;
		idserver) env=(MOBILEID_AP_PASSWORD="$IDSERVER_AP_PASSWORD") ;;
		# The bank is another organisation: its own database, not ours.
		bank) env=(-u MOBILEID_DSN MOBILEID_BANK_RP_UUID="$(awk '/^relyingPartyUUID:/ { print $2 }' rp.txt)") ;;
		esac
		env "${env[@]}" "$bin" "$role" --config "$conf/$role.conf" >>"logs/$role.log" 2>&1 &
		echo $! >"$role.pid"
		local addr
		addr=$(health_addr "$role")
		for _ in $(seq 300); do
			ready "$addr" && break
			kill -0 "$(cat "$role.pid")" 2>/dev/null || die "$role exited; see $state/logs/$role.log"
			sleep 0.1
		done
		ready "$addr" || die "$role is not ready on $addr after 30 s; see $state/logs/$role.log"
		echo "$role ready on $addr (pid $(cat "$role.pid"))"
	done
	cat <<-EOF

		Demo Bank         $(conf_value bank public-url)
		Phones            http://$(conf_value network http)/phones/
		Registration desk http://$(conf_value registration listen)/desk/  (officer / $OFFICER_PASSWORD)
		MID REST API      http://$(conf_value idserver listen)/mid-api  (relyingPartyUUID $(awk '/^relyingPartyUUID:/ { print $2 }' rp.txt))
		OpenID issuer     $(conf_value idserver issuer)
		ETSI TS 102 204   https://$(conf_value mssp listen)
		CA, OCSP, TSA     $(conf_value ca base-url)
		Logs              $state/logs/
	EOF
}

stop() {
	local role
	for ((i = ${#roles[@]} - 1; i >= 0; i--)); do
		role=${roles[i]}
		if pid_alive "$role"; then
			kill -TERM "$(cat "$state/$role.pid")"
			for _ in $(seq 100); do
				pid_alive "$role" || break
				sleep 0.1
			done
			pid_alive "$role" && kill -KILL "$(cat "$state/$role.pid")"
			echo "$role stopped"
		fi
		rm -f "$state/$role.pid"
	done
}

status() {
	local role
	for role in "${roles[@]}"; do
		if pid_alive "$role"; then
			echo "$role running (pid $(cat "$state/$role.pid")), ready: $(ready "$(health_addr "$role")" && echo yes || echo no)"
		else
			echo "$role stopped"
		fi
	done
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*) die "usage: run.sh start|stop|status" ;;
esac
