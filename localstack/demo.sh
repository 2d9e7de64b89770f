#!/usr/bin/env bash
# The README's main command (`make demo`): start the embedded lab, check the providers, seed a small
# platform on the AWS side (LocalStack), copy its media to the self-hosted side (SeaweedFS or MinIO),
# prove it arrived, take stock of the account, and rebuild its web fleet on the self-hosted side.
set -euo pipefail
failover=${FAILOVER:-failover}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1/8 start the lab (LocalStack + an S3-compatible server, no Docker)"
"$failover" lab up
eval "$("$failover" lab env)"
export FAILOVER_STATE_DIR="$FAILOVER_LAB_DIR/state"   # sync journals too live in the lab directory
"$failover" lab status

step "2/8 check every provider: reachable, authorised, what it can do"
"$failover" providers check

step "3/8 seed the AWS side: user media (real metadata, tags, a multipart-sized video), a fleet, services"
"$failover" lab seed

step "4/8 plan, then copy aws:media -> onprem:media (digested while streaming, verified on arrival)"
"$failover" sync aws:media onprem:media --dry-run
"$failover" sync aws:media onprem:media --report "$FAILOVER_LAB_DIR/demo-sync-report.json"

step "5/8 prove it: re-read both sides and compare bytes and metadata"
"$failover" verify aws:media onprem:media

step "6/8 the bucket on the self-hosted side"
"$failover" ls onprem:media
echo
echo "A second sync copies nothing (incremental):"
"$failover" sync aws:media onprem:media

step "7/8 what the AWS account holds, and what has no portable equivalent"
"$failover" inventory aws

step "8/8 rebuild the web fleet on the self-hosted side (local processes), then health-check it"
"$failover" rehost aws onprem --select app=social --select role=web
address=$("$failover" --json rehost aws onprem --select app=social --select role=web | python3 -c \
  'import json, sys; print(json.load(sys.stdin)["results"][0]["address"])')
echo "GET http://$address:8080/ -> $(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "http://$address:8080/")"
echo
echo "Report: $FAILOVER_LAB_DIR/demo-sync-report.json    Stop the lab (and the fleet): make lab-down"
