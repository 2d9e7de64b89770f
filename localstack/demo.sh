#!/usr/bin/env bash
# The README's main command (`make demo`): start the embedded lab, check the providers, seed a small
# platform on the AWS side (LocalStack), copy it to the self-hosted side (SeaweedFS or MinIO), prove
# it arrived, and show it.
set -euo pipefail
failover=${FAILOVER:-failover}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1/6 start the lab (LocalStack + an S3-compatible server, no Docker)"
"$failover" lab up
eval "$("$failover" lab env)"
export FAILOVER_STATE_DIR="$FAILOVER_LAB_DIR/state"   # sync journals too live in the lab directory
"$failover" lab status

step "2/6 check every provider: reachable, authorised, what it can do"
"$failover" providers check

step "3/6 seed the AWS side with user media (real metadata, tags, one multipart-sized video)"
"$failover" lab seed

step "4/6 plan, then copy aws:media -> onprem:media (digested while streaming, verified on arrival)"
"$failover" sync aws:media onprem:media --dry-run
"$failover" sync aws:media onprem:media --report "$FAILOVER_LAB_DIR/demo-sync-report.json"

step "5/6 prove it: re-read both sides and compare bytes and metadata"
"$failover" verify aws:media onprem:media

step "6/6 the bucket on the self-hosted side"
"$failover" ls onprem:media
echo
echo "A second sync copies nothing (incremental):"
"$failover" sync aws:media onprem:media
echo
echo "Report: $FAILOVER_LAB_DIR/demo-sync-report.json    Stop the lab: make lab-down"
