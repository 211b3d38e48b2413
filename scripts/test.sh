#!/usr/bin/env bash
# The one command that runs every test (make test calls it; so does .ci/run):
# vet, the unit and integration suites with -race, short fuzz runs, the real Secret
# Service keyring test, and the real window under Xvfb with a screenshot.
set -euo pipefail
cd "$(dirname "$0")/.."

TAGS=migrated_fynedo
scripts/deps.sh

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted" >&2; exit 1; fi

echo "== go vet"
go vet -tags "$TAGS" ./...

echo "== go test -race"
results=$(mktemp)
trap 'rm -f "$results"' EXIT
go test -race -tags "$TAGS" -count=1 -timeout 30m ./... 2>&1 | tee "$results"

echo "== fuzz (short)"
# Every Fuzz target in the tree, a few seconds each, so the corpus seeds and a little
# exploration run in CI.
for f in $(git ls-files '*_test.go'); do
  for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)' "$f" | awk '{print $2}'); do
    go test -tags "$TAGS" -run='^$' -fuzz="^${target}\$" -fuzztime="${FUZZTIME:-8s}" "./$(dirname "$f")"
  done
done

echo "== Secret Service keyring (gnome-keyring under dbus-run-session)"
scripts/secret-service-test.sh

echo "== real window under Xvfb"
scripts/xvfb-screenshot.sh

passed=$(grep -c '^ok ' "$results" || true)
echo "== all steps green"
echo "packages: $passed passed, 0 failed"
