#!/usr/bin/env bash
# make run: linkd in dev mode on 127.0.0.1 with its own SQLite and certificate in
# .run/, the companion app pointed at it, and a kiosk window waiting to be linked.
# Sign in as demo / demo. Closing the companion app stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
mkdir -p .run/bin
go build -tags migrated_fynedo -o .run/bin/linkdesk .
go build -o .run/bin/linkd ./cmd/linkd

addr=${LINKD_ADDR:-127.0.0.1:8443}
issuer="https://$addr"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

.run/bin/linkd serve --dev --data .run/data --addr "$addr" &
pids+=($!)
deadline=$((SECONDS + 60))
until curl -fsk "$issuer/.well-known/openid-configuration" >/dev/null 2>&1; do
  kill -0 "${pids[0]}" 2>/dev/null || { echo "run: linkd exited; see its output above" >&2; exit 1; }
  [ $SECONDS -lt $deadline ] || { echo "run: linkd did not answer on $issuer" >&2; exit 1; }
  sleep 0.2
done
ca=.run/data/ca.pem

echo "run: linkd at $issuer (CA $ca); sign in as demo / demo"
.run/bin/linkdesk kiosk --issuer "$issuer" --client-id linkdesk-kiosk --ca-file "$ca" --device-name "Lobby display" &
pids+=($!)
.run/bin/linkdesk --issuer "$issuer" --ca-file "$ca"
