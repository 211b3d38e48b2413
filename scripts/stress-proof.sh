#!/usr/bin/env bash
# The "never flakes" proof: `make test` from a fresh clone of this checkout's commit,
# RUNS times (default 3), each while stress-ng keeps every core busy. Logs go to
# $PROOF_DIR (default build/stress-proof/); a summary is printed at the end and the
# script exits non-zero unless every run passed.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-3}
cpus=${STRESS_CPUS:-$(nproc)}
repo=$PWD
commit=$(git rev-parse HEAD)
proof=${PROOF_DIR:-$repo/build/stress-proof}
mkdir -p "$proof"
proof=$(cd "$proof" && pwd)

if ! command -v stress-ng >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "proof: installing stress-ng"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends stress-ng >/dev/null
  else
    echo "proof: needs stress-ng: sudo apt-get install stress-ng" >&2
    exit 1
  fi
fi
if [ -n "$(git status --porcelain)" ]; then
  echo "proof: note: uncommitted changes are not part of the proof; it tests $commit" >&2
fi

stress_pid=
clone=
cleanup() {
  if [ -n "$stress_pid" ]; then kill "$stress_pid" 2>/dev/null || true; wait "$stress_pid" 2>/dev/null || true; fi
  if [ -n "$clone" ]; then rm -rf "$clone"; fi
}
trap cleanup EXIT

results=()
failures=0
for i in $(seq 1 "$runs"); do
  clone=$(mktemp -d)
  git clone --quiet --no-local "$repo" "$clone"
  git -C "$clone" checkout --quiet "$commit"
  stress-ng --cpu "$cpus" --timeout 4h --quiet &
  stress_pid=$!
  log="$proof/run-$i.log"
  rm -rf "$proof/run-$i-artifacts"
  echo "proof: run $i/$runs: make test in $clone (commit ${commit:0:12}) under stress-ng --cpu $cpus; log $log"
  start=$SECONDS
  rc=0
  (cd "$clone" && ARTIFACTS="$proof/run-$i-artifacts" make test) >"$log" 2>&1 || rc=$?
  secs=$((SECONDS - start))
  kill "$stress_pid" 2>/dev/null || true
  wait "$stress_pid" 2>/dev/null || true
  stress_pid=
  rm -rf "$clone"
  clone=
  summary=$(grep -E '^packages: ' "$log" | tail -n 1 || true)
  if [ $rc -eq 0 ]; then
    results+=("run $i: PASS in ${secs}s; ${summary:-no packages line}")
  else
    failures=$((failures + 1))
    steps=$(awk '/^== failed steps:/{f=1; next} f && /^   /{sub(/^   /, ""); printf "%s%s", sep, $0; sep="; "}' "$log")
    results+=("run $i: FAIL (exit $rc) in ${secs}s; ${summary:-no packages line}; failed: ${steps:-see log}")
  fi
  echo "proof: ${results[-1]}"
done

echo "== stress proof: commit $commit, stress-ng --cpu $cpus, $runs runs"
printf '   %s\n' "${results[@]}"
echo "== $((runs - failures)) of $runs passed (logs in $proof)"
[ $failures -eq 0 ]
