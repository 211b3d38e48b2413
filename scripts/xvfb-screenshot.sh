#!/usr/bin/env bash
# Starts a dev linkd on 127.0.0.1, then the real linkdesk app and a kiosk window under
# Xvfb, waits until each window has drawn, and saves screenshots to build/screenshots.
# Fails if a window never appears or stays blank.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${SCREENSHOT_DIR:-build/screenshots}
mkdir -p "$out"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# wait_for DESCRIPTION SECONDS COMMAND...: retry COMMAND until it succeeds or time runs out.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then echo "xvfb: timed out waiting for $what" >&2; return 1; fi
    sleep 0.2
  done
}

go build -tags migrated_fynedo -o "$work/linkdesk" .
go build -o "$work/linkd" ./cmd/linkd

port=$((20000 + RANDOM % 20000))
issuer="https://127.0.0.1:$port"
"$work/linkd" serve --dev --data "$work/data" --addr "127.0.0.1:$port" >"$work/linkd.log" 2>&1 &
pids+=($!)
wait_for "linkd to answer discovery" 60 curl -fsk "$issuer/.well-known/openid-configuration"
ca=$(find "$work/data" -name 'ca*.pem' | head -n 1)

display=:$((90 + RANDOM % 100))
Xvfb "$display" -screen 0 1920x1080x24 -nolisten tcp >"$work/xvfb.log" 2>&1 &
pids+=($!)
export DISPLAY=$display
wait_for "Xvfb" 20 xdpyinfo

# shot NAME WINDOW_TITLE: wait for the window, then until it shows more than a flat colour.
shot() {
  local name=$1 title=$2
  wait_for "window '$title'" 60 xdotool search --name "^$title\$"
  local id
  id=$(xdotool search --name "^$title\$" | head -n 1)
  local deadline=$((SECONDS + 30))
  while :; do
    /usr/bin/import -window "$id" "$out/$name.png"
    local sd
    sd=$(/usr/bin/convert "$out/$name.png" -colorspace Gray -format '%[fx:standard_deviation]' info:)
    if awk -v s="$sd" 'BEGIN{exit !(s > 0.02)}'; then break; fi
    if [ $SECONDS -ge $deadline ]; then echo "xvfb: window '$title' stayed blank" >&2; return 1; fi
    sleep 0.3
  done
  echo "xvfb: saved $out/$name.png ($(/usr/bin/identify -format '%wx%h' "$out/$name.png"))"
}

"$work/linkdesk" --issuer "$issuer" --ca-file "$ca" >"$work/app.log" 2>&1 &
pids+=($!)
shot linkdesk "Linkdesk"

"$work/linkdesk" kiosk --issuer "$issuer" --client-id linkdesk-kiosk --ca-file "$ca" \
  --device-name "Lobby display" --fullscreen >"$work/kiosk.log" 2>&1 &
pids+=($!)
shot kiosk "Linkdesk kiosk"
