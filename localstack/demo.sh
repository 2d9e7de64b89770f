#!/usr/bin/env bash
# The README's main command (`make demo`): start the embedded lab, seed a small social network on
# the AWS side (LocalStack: media in S3, an EC2 fleet running the app, a Route53 zone, services with
# no portable equivalent), evacuate it to the self-hosted side (an S3-compatible server, local
# instances, PowerDNS) with playbooks/evacuate-aws.yaml, and show what users get afterwards.
set -euo pipefail
failover=${FAILOVER:-failover}
python=$(dirname "$(command -v "$failover")")/python
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1/6 start the lab: LocalStack, an S3-compatible server, PowerDNS (no Docker)"
"$failover" lab up
eval "$("$failover" lab env)"
export FAILOVER_STATE_DIR="$FAILOVER_LAB_DIR/state"   # run states and journals live in the lab directory
"$failover" lab status

step "2/6 check every provider: reachable, authorised, what it can do"
"$failover" providers check

step "3/6 seed the platform on AWS: user media, the app's fleet, its DNS zone, services around it"
"$failover" lab seed

step "4/6 the plan (dry run: every provider checked, every step planned, nothing changed)"
# The same variables as the run below: it is the same run, and its report shows this plan as approved.
# DEMO_COMPUTE=hosts (make demo COMPUTE=hosts) rebuilds the fleet on the lab's SSH servers instead.
compute=(${DEMO_COMPUTE:+--var "compute=$DEMO_COMPUTE"})
"$failover" run playbooks/evacuate-aws.yaml --dry-run --var max_ttl_wait=5 "${compute[@]}"

step "5/6 evacuate: failover run playbooks/evacuate-aws.yaml"
# --yes approves the DNS cutover in advance; max_ttl_wait=5: the lab has no resolvers still holding
# the old answers, so waiting out the old TTL (300 s) would only make the demo slower.
"$failover" run playbooks/evacuate-aws.yaml --yes --var max_ttl_wait=5 "${compute[@]}" \
  --report "$FAILOVER_LAB_DIR/evacuation-report.html"

step "6/6 what users get now: the new DNS answers, the app runs there, its media comes from the new store"
"$failover" dns query onprem www.social.example
address=$("$failover" --json dns query onprem www.social.example | "$python" -c \
  'import json, sys; print(json.load(sys.stdin)["answer"][0])')
"$python" - "$address" <<'PY'
import json, sys, urllib.error, urllib.request
direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
address = sys.argv[1]
try:
    page = json.load(direct.open(f"http://{address}:8080/", timeout=10))
    print(f"GET http://{address}:8080/ -> {page}")
    with direct.open(f"http://{address}:8080/media/avatars/user000.png", timeout=10) as image:
        body = image.read()
except (urllib.error.URLError, OSError) as error:
    sys.exit(f"the app at {address}:8080 did not answer ({error}); `failover lab status` shows the lab")
print(f"GET http://{address}:8080/media/avatars/user000.png -> {image.status} {image.headers['Content-Type']}, "
      f"{len(body)} bytes, fetched by the app from {page['media']}")
PY
echo
echo "Report for people (one self-contained page): $FAILOVER_LAB_DIR/evacuation-report.html"
echo "The same as JSON, beside the run's state: $FAILOVER_STATE_DIR/runs/evacuate-aws-*/report.json"
echo "Undo it: failover run playbooks/evacuate-aws.yaml --var max_ttl_wait=5 --rollback    Stop the lab: make lab-down"
