#!/usr/bin/env bash
# Installs what building and testing Linkdesk needs on Debian: only what is missing,
# and only when running as root (otherwise it says what to install).
set -euo pipefail

# Debian packages: C toolchain and X11/GL headers for Fyne's GLFW driver, Xvfb and
# friends for the real-window test (xclip puts a picture on the clipboard, xdg-utils
# opens linkdesk:// links), gnome-keyring + dbus for the Secret Service test,
# Chromium for the web page tests, libnss3-tools (certutil) for make trust-dev-ca and
# its test, postgresql for linkd's PostgreSQL store tests (they start a private cluster
# in a temporary directory with initdb and pg_ctl from /usr/lib/postgresql/*/bin),
# g++-mingw-w64-x86-64 and xz-utils for make package (linkdesk.exe with cgo and the C++
# camera driver; the tar.xz).
packages=(gcc g++-mingw-w64-x86-64 xz-utils pkg-config libgl1-mesa-dev xorg-dev xvfb x11-utils xdotool imagemagick xclip xdg-utils
  dbus dbus-x11 gnome-keyring libsecret-tools chromium fonts-dejavu-core libnss3-tools postgresql)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "deps: missing Debian packages: ${missing[*]}" >&2
    echo "deps: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

go mod download
