#!/usr/bin/env bash
# dev-ca.sh trust|untrust|status [CA_FILE]: makes this user's browsers trust (or no
# longer trust) the local CA that `make run`'s linkd made, the way mkcert does: the CA
# goes, as a CA for TLS servers (trust flags C,,), into the NSS certificate databases
# of Chromium/Chrome ($HOME/.pki/nssdb, also the snap's) and of every Firefox profile
# ($HOME/.mozilla/firefox/*/cert9.db, also the snap's), with certutil (Debian package
# libnss3-tools). It never runs by itself: make trust-dev-ca / make untrust-dev-ca.
# status exits 0 when every database found trusts this CA file's certificate for
# TLS servers.
# CA_FILE defaults to .run/data/ca.pem in this repository.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
nick="Linkdesk dev CA (.run/data)"
cmd=${1:-}
ca=${2:-$root/.run/data/ca.pem}

die() { echo "dev-ca: $*" >&2; exit 1; }

case "$cmd" in
trust | untrust | status) ;;
*) echo "usage: scripts/dev-ca.sh trust|untrust|status [CA_FILE]" >&2; exit 2 ;;
esac
command -v certutil >/dev/null ||
  die "certutil is missing: install Debian's libnss3-tools (sudo apt-get install libnss3-tools), then run this again"

# dbs: one "DIR<tab>BROWSER" line per NSS database this user's browsers read. When
# creating is asked for and a Chromium-family browser is installed but has never run,
# its database is made now (empty password, as the browser would make it), so the
# trust is there on its first start.
dbs() {
  local create=${1:-} d
  if [ -n "$create" ] && [ ! -e "$HOME/.pki/nssdb/cert9.db" ] &&
    { command -v chromium || command -v google-chrome || command -v chromium-browser; } >/dev/null; then
    mkdir -p "$HOME/.pki/nssdb"
    chmod 700 "$HOME/.pki" "$HOME/.pki/nssdb"
    certutil -N -d "sql:$HOME/.pki/nssdb" --empty-password
  fi
  for d in "$HOME/.pki/nssdb" "$HOME/snap/chromium/current/.pki/nssdb"; do
    [ -e "$d/cert9.db" ] && printf '%s\tChromium/Chrome\n' "$d"
  done
  for d in "$HOME"/.mozilla/firefox/*/ "$HOME"/snap/firefox/common/.mozilla/firefox/*/; do
    [ -e "$d/cert9.db" ] && printf '%s\tFirefox profile %s\n' "${d%/}" "$(basename "$d")"
  done
  return 0
}

# remove DIR: deletes every certificate with our nickname (a stale CA from an earlier
# .run/data included).
remove() {
  local i
  for i in 1 2 3 4 5 6 7 8 9 10; do
    certutil -L -d "sql:$1" -n "$nick" >/dev/null 2>&1 || return 0
    certutil -D -d "sql:$1" -n "$nick"
  done
  die "could not remove \"$nick\" from $1"
}

# body FILE: a PEM certificate's base64 without armour or line breaks, for comparing.
body() { tr -d '\r' | sed '/^-----/d' | tr -d ' \n'; }

found=0
case "$cmd" in
trust)
  [ -f "$ca" ] || die "there is no dev CA at $ca yet: linkd makes it when it first starts, so run make run once, then this again"
  while IFS=$'\t' read -r d what; do
    found=1
    remove "$d"
    certutil -A -d "sql:$d" -t "C,," -n "$nick" -i "$ca"
    echo "dev-ca: $what ($d) now trusts \"$nick\" for TLS servers"
  done < <(dbs create)
  [ $found = 1 ] ||
    die "found no browser certificate database (Chromium: ~/.pki/nssdb, Firefox: ~/.mozilla/firefox/*/cert9.db): start the browser once, then run this again"
  echo "dev-ca: restart the browser to pick it up. Anyone holding $(dirname "$ca")/ca-key.pem can now make certificates these browsers accept for any site: make untrust-dev-ca removes the trust again."
  ;;
untrust)
  while IFS=$'\t' read -r d what; do
    found=1
    if certutil -L -d "sql:$d" -n "$nick" >/dev/null 2>&1; then
      remove "$d"
      echo "dev-ca: $what ($d) no longer trusts \"$nick\""
    fi
  done < <(dbs)
  [ $found = 1 ] || echo "dev-ca: found no browser certificate database; nothing to remove"
  ;;
status)
  [ -f "$ca" ] || die "there is no dev CA at $ca yet"
  want=$(body <"$ca")
  ok=1
  while IFS=$'\t' read -r d what; do
    found=1
    flags=$(certutil -L -d "sql:$d" | awk -v n="$nick" 'index($0, n) == 1 { print $NF }')
    if [ "$(certutil -L -d "sql:$d" -n "$nick" -a 2>/dev/null | body)" = "$want" ] && [[ $flags == C* ]]; then
      echo "dev-ca: $what ($d) trusts $ca"
    else
      echo "dev-ca: $what ($d) does not trust $ca"
      ok=0
    fi
  done < <(dbs)
  [ $found = 1 ] || { echo "dev-ca: found no browser certificate database"; exit 1; }
  [ $ok = 1 ]
  ;;
esac
