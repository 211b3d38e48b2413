#!/usr/bin/env bash
# Runs the keyring tests tagged secretservice against a real Secret Service: a
# gnome-keyring daemon in a private D-Bus session, unlocked with an empty password.
set -euo pipefail
cd "$(dirname "$0")/.."
dbus-run-session -- bash -c '
  set -euo pipefail
  export XDG_RUNTIME_DIR=$(mktemp -d) HOME_KEYRING=$(mktemp -d)
  export XDG_DATA_HOME=$HOME_KEYRING
  eval "$(printf "" | gnome-keyring-daemon --unlock --components=secrets)"
  eval "$(gnome-keyring-daemon --start --components=secrets)"
  go test -race -tags "migrated_fynedo secretservice" -count=1 -run SecretService ./auth/
'
