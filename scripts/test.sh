#!/usr/bin/env bash
# The one command that runs every test (make test calls it; so does .ci/run):
# gofmt, vet, staticcheck, the unit and integration suites with -race (the layering
# test among them), short fuzz runs, the real Secret Service keyring test, and the
# real window under Xvfb with screenshots. Every step runs; the script exits non-zero
# when any failed, and says which. Screenshots and other test output go to $ARTIFACTS
# (default build/test-artifacts/).
set -euo pipefail
cd "$(dirname "$0")/.."

TAGS=migrated_fynedo
STATICCHECK_VERSION=v0.8.2
# Each fuzz target runs this many inputs: a few seconds each. A count, not a duration:
# a duration-based -fuzztime can end in "context deadline exceeded" with no failing
# input when the deadline races the coordinator (golang/go#75804).
FUZZTIME=${FUZZTIME:-20000x}

scripts/deps.sh

if [ -z "${ARTIFACTS:-}" ]; then
  ARTIFACTS=$PWD/build/test-artifacts
  rm -rf "$ARTIFACTS" # ours: no screenshot from an earlier run is mistaken for this one's
fi
mkdir -p "$ARTIFACTS"
ARTIFACTS=$(cd "$ARTIFACTS" && pwd) # tests run in their package's directory
export ARTIFACTS

failed_steps=()
# step NAME COMMAND...: run one step; a failure is recorded and the next step runs.
step() {
  local name=$1; shift
  echo "== $name"
  local rc=0
  "$@" || rc=$?
  if [ $rc -ne 0 ]; then
    echo "== FAILED: $name (exit $rc)" >&2
    failed_steps+=("$name")
  fi
}

gofmt_check() {
  local unformatted
  unformatted=$(gofmt -l $(git ls-files '*.go'))
  if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted" >&2; return 1; fi
}

# staticcheck is built into build/tools, which this script owns, at a fixed version.
# (Functions run by step return their status explicitly: set -e does not stop them.)
staticcheck_run() {
  GOBIN="$PWD/build/tools" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" &&
    build/tools/staticcheck -tags "$TAGS" ./...
}

results="$ARTIFACTS/go-test.txt"
go_test_rc=0
go_test() {
  go test -race -tags "$TAGS" -count=1 -timeout 30m ./... 2>&1 | tee "$results" || go_test_rc=$? # pipefail: go test's status
  return $go_test_rc
}

fuzz() {
  local f target rc=0
  for f in $(git ls-files '*_test.go'); do
    for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)' "$f" | awk '{print $2}'); do
      echo "-- $target ($FUZZTIME)"
      go test -tags "$TAGS" -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "./$(dirname "$f")" || rc=1
    done
  done
  return $rc
}

step "gofmt" gofmt_check
step "go vet" go vet -tags "$TAGS" ./...
step "staticcheck $STATICCHECK_VERSION" staticcheck_run
step "go test -race" go_test
step "fuzz ($FUZZTIME per target)" fuzz
step "Secret Service keyring (gnome-keyring under dbus-run-session)" scripts/secret-service-test.sh
step "real window under Xvfb" scripts/xvfb-screenshot.sh

# Packages: an "ok" line each that passed; a "FAIL<tab>package" line each that failed
# (tests, build or setup). A go test that died before printing one counts as a failure.
passed=$(grep -cE '^ok\s' "$results" || true)
failed=$(grep -cE '^FAIL\s+\S' "$results" || true)
if [ "$failed" -eq 0 ] && [ $go_test_rc -ne 0 ]; then failed=1; fi

echo "== artifacts in $ARTIFACTS"
(cd "$ARTIFACTS" && find . -type f | sed 's|^\./|   |' | sort)
if [ ${#failed_steps[@]} -gt 0 ]; then
  printf '== failed steps:\n'
  printf '   %s\n' "${failed_steps[@]}"
else
  echo "== all steps green"
fi
echo "packages: $passed passed, $failed failed"
[ ${#failed_steps[@]} -eq 0 ]
