#!/usr/bin/env bash
# make run: linkd in dev mode on 127.0.0.1 with its own SQLite and certificate in
# .run/, the companion app pointed at it, and a kiosk window waiting to be linked.
# Sign in as demo / demo. Closing the companion app stops everything.
#
# LINKD_ADDR=HOST:PORT listens (and names the issuer) elsewhere, e.g. the machine's LAN
# address to try the phone pages. Checks that need no build run first, so a missing
# display or a wildcard address is reported at once, not after minutes of building.
set -euo pipefail
cd "$(dirname "$0")/.."

addr=${LINKD_ADDR:-127.0.0.1:8443}
case "$addr" in
0.0.0.0:* | "[::]":* | :*)
  echo "run: LINKD_ADDR=$addr is a wildcard, but the app, the kiosk and a phone need an address they can reach and that linkd's certificate names: give this machine's LAN address instead, e.g. LINKD_ADDR=$(hostname -I 2>/dev/null | awk '{print $1}' | grep . || echo 192.168.1.20):8443 make run" >&2
  exit 2
  ;;
*:*) ;;
*)
  echo "run: LINKD_ADDR=$addr needs a port, e.g. LINKD_ADDR=$addr:8443 make run" >&2
  exit 2
  ;;
esac

# The desktop app is built for X11 (Fyne's GLFW driver; under Wayland through XWayland).
case "$(uname -s)" in
Linux | *BSD)
  if [ -z "${DISPLAY:-}" ]; then
    if [ -n "${WAYLAND_DISPLAY:-}" ]; then
      echo "run: make run opens desktop windows through X11 but this Wayland session has no XWayland (\$DISPLAY is unset): turn XWayland on, or try it in a virtual X server with \`xvfb-run -a make run\` (xvfb-run is in Debian's xvfb package, which scripts/deps.sh installs)." >&2
    else
      echo "run: make run opens desktop windows and there is no display here (\$DISPLAY and \$WAYLAND_DISPLAY are unset): run it in a desktop session, or try it in a virtual X server with \`xvfb-run -a make run\` (xvfb-run is in Debian's xvfb package, which scripts/deps.sh installs)." >&2
    fi
    exit 1
  fi
  if command -v xdpyinfo >/dev/null && ! xdpyinfo >/dev/null 2>&1; then
    echo "run: make run opens desktop windows but cannot open the display \$DISPLAY=$DISPLAY: check that it is running and that you may use it (xhost, ssh -X), or try it in a virtual X server with \`xvfb-run -a make run\`." >&2
    exit 1
  fi
  ;;
esac
if [ -n "${LINKDESK_RUN_CHECK_ONLY:-}" ]; then # for scripts/scriptstest: stop after the checks above
  echo "run: checks passed"
  exit 0
fi

echo "run: checking build dependencies (scripts/deps.sh)…"
scripts/deps.sh
mkdir -p .run/bin
echo "run: building the desktop app (the first time takes a few minutes: Fyne's C parts compile once)…"
go build -tags migrated_fynedo -o .run/bin/linkdesk .
echo "run: building linkd…"
go build -o .run/bin/linkd ./cmd/linkd

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
if ! scripts/dev-ca.sh status >/dev/null 2>&1; then
  echo "run: your browser will refuse linkd's dev certificate at sign-in until you trust its CA: make trust-dev-ca (make untrust-dev-ca removes it again)"
fi
case "$addr" in
127.* | localhost:* | "[::1]":*) ;;
*) echo "run: phones on this network can open $issuer/link once they trust $ca (see README.md, \"Try the phone pages\")" ;;
esac
.run/bin/linkdesk kiosk --issuer "$issuer" --client-id linkdesk-kiosk --ca-file "$ca" --device-name "Lobby display" &
pids+=($!)
.run/bin/linkdesk --issuer "$issuer" --ca-file "$ca"
