#!/usr/bin/env bash
# Runs the keyring tests tagged secretservice against a real Secret Service: a
# gnome-keyring daemon in a private D-Bus session with a fresh login keyring in a
# temporary HOME, unlocked with a throwaway password.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOCACHE=${GOCACHE:-$(go env GOCACHE)} GOMODCACHE=${GOMODCACHE:-$(go env GOMODCACHE)} GOPATH=${GOPATH:-$(go env GOPATH)}
keyring_home=$(mktemp -d)
trap 'rm -rf "$keyring_home"' EXIT
HOME=$keyring_home XDG_DATA_HOME=$keyring_home/.local/share XDG_RUNTIME_DIR=$keyring_home \
dbus-run-session -- bash -c '
  set -euo pipefail
  printf "linkdesk-test" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
  go test -race -tags "migrated_fynedo secretservice" -count=1 -run SecretService -v ./auth/ 2>&1 | grep -E "^(=== RUN|--- |PASS|FAIL|ok|\s+\S+_test.go)" 
' 2> >(grep -v "Failed to set fd limit" >&2)
