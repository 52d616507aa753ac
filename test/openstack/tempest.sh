#!/bin/sh
# Tempest (Debian's `tempest` package) against Canopy's Neutron v2.0 and minimal Keystone v3
# (issue 14, docs/neutron-api.md). test/e2e TestTempestInterop runs it with the interoperability
# guideline network tests (interop-network.txt); run by hand, as root:
#
#   go build -o /tmp/canopy ./cmd/canopy
#   CANOPY=/tmp/canopy test/openstack/tempest.sh                      # tempest.api.network
#   CANOPY=/tmp/canopy TEMPEST_REGEX='^tempest.api.network.test_networks' test/openstack/tempest.sh
#   CANOPY=/tmp/canopy TEMPEST_INCLUDE_LIST=$PWD/test/openstack/interop-network.txt test/openstack/tempest.sh
#
# It starts a `canopy server` (embedded etcd, plain HTTP, no agent: ports stay DOWN, which the
# API tests do not look at) on ports of its own in $WORK, creates the accounts, and
# configures Tempest with pre-provisioned credentials (accounts.yaml), since Canopy's Keystone
# has no API to create users: member accounts (primary and alt) and the operator (user `admin`,
# password the server's admin token, role admin) scoped to accounts of its own. Only neutron is
# "available"; the network feature flags list the extensions Canopy serves
# (GET /v2.0/extensions). The configuration is tempest.conf.in; Tempest's log and its stestr
# repository (ws/.stestr: each test's result and traceback) stay in $WORK.
set -eu
HERE=$(cd "${0%/*}" && pwd)
CANOPY=${CANOPY:-canopy}
WORK=${WORK:-/tmp/canopy-tempest}
REGEX=${TEMPEST_REGEX:-^tempest.api.network}
CONCURRENCY=${TEMPEST_CONCURRENCY:-2}
P=${PORT_BASE:-17}   # ports ${P}181 (REST), ${P}788 (EC2), ${P}379/${P}380 (etcd), ${P}500 (Keystone), ${P}696 (Neutron)
KS=http://127.0.0.1:${P}500/v3

rm -rf "$WORK"; mkdir -p "$WORK"
"$CANOPY" server --data-dir "$WORK/data" --listen 127.0.0.1:${P}181 --ec2-listen 127.0.0.1:${P}788 \
	--etcd-client-url https://127.0.0.1:${P}379 --etcd-peer-url https://127.0.0.1:${P}380 \
	--keystone-listen 127.0.0.1:${P}500 --neutron-listen 127.0.0.1:${P}696 \
	--ec2-public-pool 203.0.113.0/24 >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do
	curl -fs http://127.0.0.1:${P}696/ >/dev/null 2>&1 && break
	sleep 0.2
done
cli() { "$CANOPY" --data-dir "$WORK/data" --url http://127.0.0.1:${P}181 "$@"; }
# One accounts.yaml entry from `canopy account create --openrc`.
entry() { # account role
	cli account create "$1" --openrc "$KS" | sed -n 's/^export //p' >"$WORK/$1.rc"
	(. "$WORK/$1.rc"; printf -- "- username: '%s'\n  password: '%s'\n  project_name: '%s'\n  domain_name: Default\n  roles: [%s]\n" \
		"$OS_USERNAME" "$OS_PASSWORD" "$OS_PROJECT_NAME" "$2")
}
{
	# Tempest locks an account per test class (and an alt one for some): two members and one
	# admin per worker, else a worker finds none free and its class errors.
	for i in $(seq $((2 * CONCURRENCY))); do entry tempest$i member; done
	for i in $(seq "$CONCURRENCY"); do
		cli account create tempestadmin$i --openrc "$KS" >/dev/null
		printf -- "- username: admin\n  password: '%s'\n  project_name: tempestadmin$i\n  domain_name: Default\n  types: [admin]\n  roles: [admin]\n" \
			"$(cat "$WORK/data/admin-token")"
	done
} >"$WORK/accounts.yaml"

# The 10 s sleep of Tempest before each subnet delete is dropped (py/sitecustomize.py says why).
export PYTHONPATH="$HERE/py${PYTHONPATH:+:$PYTHONPATH}"
cd "$WORK"
tempest init --workspace-path "$WORK/workspace.yaml" ws >/dev/null
sed -e "s,@WORK@,$WORK,g" -e "s,@KS@,$KS,g" "$HERE/tempest.conf.in" >ws/etc/tempest.conf
cd ws
rc=0
if [ -n "${TEMPEST_INCLUDE_LIST:-}" ]; then
	tempest run --include-list "$TEMPEST_INCLUDE_LIST" --concurrency "$CONCURRENCY" || rc=$?
else
	tempest run --regex "$REGEX" --concurrency "$CONCURRENCY" || rc=$?
fi
exit $rc
