#!/usr/bin/env bash
# The real-window test: a dev linkd on 127.0.0.1, then the real linkdesk binary under
# Xvfb with a real Secret Service (gnome-keyring in a private D-Bus session), driven
# from the keyboard with xdotool the way a person would:
#   sign-in screen -> Space signs in (a scripted browser fills linkd's login form)
#   -> code screen -> type the code a real device (linkdevice) shows -> confirm screen
#   -> Tab to "Link device", Space -> the device prints that it is linked.
# Then the kiosk full screen. Screenshots of each step go to $ARTIFACTS/xvfb/ (default
# build/test-artifacts/xvfb/). Each wait is on a condition (a log line, a window) with a
# deadline; none waits for the picture to settle.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${LINKDESK_IN_DBUS:-}" ]; then
  keyring_home=$(mktemp -d)
  trap 'rm -rf "$keyring_home"' EXIT
  export GOCACHE=${GOCACHE:-$(go env GOCACHE)} GOMODCACHE=${GOMODCACHE:-$(go env GOMODCACHE)} GOPATH=${GOPATH:-$(go env GOPATH)}
  HOME=$keyring_home XDG_DATA_HOME=$keyring_home/.local/share XDG_CONFIG_HOME=$keyring_home/.config \
    XDG_RUNTIME_DIR=$keyring_home LINKDESK_IN_DBUS=1 \
    dbus-run-session -- "$0" "$@" 2> >(grep -v "Failed to set fd limit" >&2)
  exit $?
fi

printf 'linkdesk-test' | gnome-keyring-daemon --unlock --components=secrets >/dev/null
export LANG=en_US.UTF-8
unset LC_ALL
out=${ARTIFACTS:-build/test-artifacts}/xvfb
mkdir -p "$out"
# No animations: the entry caret and button ripples stay still between captures.
mkdir -p "$XDG_CONFIG_HOME/fyne"
printf '{"no_animations": true}\n' >"$XDG_CONFIG_HOME/fyne/settings.json"
work=$(mktemp -d)
pids=()
cleanup() {
  rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ $rc -ne 0 ]; then for f in "$work"/*.log; do echo "--- $f"; head -n 30 "$f"; done; fi
  rm -rf "$work"
}
trap cleanup EXIT

# wait_for DESCRIPTION SECONDS COMMAND...: retry COMMAND until it succeeds or time runs out.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then echo "xvfb: timed out waiting for $what" >&2; return 1; fi
    sleep 0.2
  done
  echo "xvfb: $what"
}

go build -tags migrated_fynedo -o "$work/linkdesk" .
go build -o "$work/linkd" ./cmd/linkd
go build -o "$work/linkdevice" ./cmd/linkdevice
go build -o "$work/readqr" ./scripts/readqr

port=$((20000 + RANDOM % 20000))
issuer="https://127.0.0.1:$port"
"$work/linkd" serve --dev --data "$work/data" --addr "127.0.0.1:$port" >"$work/linkd.log" 2>&1 &
pids+=($!)
wait_for "linkd answers discovery" 60 curl -fsk "$issuer/.well-known/openid-configuration"
ca="$work/data/ca.pem"

# The scripted browser: signs in as demo/demo on linkd's login page, then follows the
# redirect to the app's loopback listener, as a person's browser would.
mkdir -p "$work/bin"
cat >"$work/bin/xdg-open" <<EOF
#!/usr/bin/env bash
jar=\$(mktemp)
page=\$(curl -fsS --cacert "$ca" -c "\$jar" -b "\$jar" -L "\$1")
# Every hidden field of the form (the CSRF token, the sign-in request), as a browser sends them.
hidden=()
while IFS= read -r f; do
  hidden+=(--data-urlencode "\$f")
done < <(printf '%s' "\$page" | grep -oE '<input type="hidden" name="[^"]*" value="[^"]*"' |
  sed -E 's/.*name="([^"]*)" value="([^"]*)"/\1=\2/')
curl -fsS --cacert "$ca" -c "\$jar" -b "\$jar" -L -o /dev/null \
  "\${hidden[@]}" -d username=demo -d password=demo "$issuer/login"
echo "browser: signed in (\$?)"
EOF
chmod +x "$work/bin/xdg-open"
export PATH="$work/bin:$PATH" BROWSER="$work/bin/xdg-open"

# Xvfb picks a free display itself and writes its number to the file.
Xvfb -displayfd 3 -screen 0 1920x1080x24 -nolisten tcp -noreset 3>"$work/display" >"$work/xvfb.log" 2>&1 &
pids+=($!)
wait_for "Xvfb picked a display" 20 test -s "$work/display"
export DISPLAY=:$(head -n 1 "$work/display")
wait_for "Xvfb is up" 20 xdpyinfo

# The clipboard picture reader against the real X clipboard (xclip owns the selection).
go test -race -count=1 -tags x11 -run X11 ./devices/scan/

# Screens are waited for on the log line the app writes when it shows one ("ui: screen
# screen=confirm", "kiosk: state state=device.Linked"), never on the picture settling: the
# confirm and kiosk screens count down every second, so the picture never settles on a busy
# machine. The line is written just before the new screen is drawn, so a capture taken after
# it may still show the screen before; shot therefore saves the first capture that differs
# from the screen before (what the window showed until the line appeared).

# capture TITLE FILE: one capture of the window titled TITLE; fails while it is not viewable.
capture() {
  local id
  id=$(xdotool search --name "^$1\$" | sed -n 1p) || return 1
  [ -n "$id" ] && /usr/bin/import -window "$id" "$2" 2>/dev/null
}
oldshot() { echo "$work/old-${1// /_}.png"; }
# before TITLE: remember what the window shows now, just before the input that changes it.
before() { capture "$1" "$(oldshot "$1")" || true; }
# new_screen NEW OLD: NEW is more than a flat colour and differs from OLD (when there is
# one) in more than 2% of its pixels. A countdown tick, the caret or a progress bar change
# a few thousand pixels at most; a new screen changes tens of thousands.
new_screen() {
  local sd ae total
  sd=$(/usr/bin/convert "$1" -colorspace Gray -format '%[fx:standard_deviation]' info:)
  awk -v s="$sd" 'BEGIN{exit !(s > 0.02)}' || return 1
  changed="first screen"
  [ -e "$2" ] || return 0
  ae=$(/usr/bin/compare -metric AE "$1" "$2" null: 2>&1) && return 1 # identical
  total=$(/usr/bin/identify -format '%[fx:w*h]' "$1")
  # Not a number: the sizes differ (the window was resized), so the screen is new.
  changed=$(awk -v ae="$ae" -v t="$total" 'BEGIN{
    if (ae !~ /^[0-9.]+(e[+]?[0-9]+)?$/) print "new size"; else printf "%.1f%% of pixels changed", 100 * ae / t }')
  awk -v ae="$ae" -v t="$total" 'BEGIN{exit !(ae !~ /^[0-9.]+(e[+]?[0-9]+)?$/ || ae + 0 > 0.02 * t)}'
}

# shot NAME TITLE WHAT SECS CHECK...: wait until CHECK (a log line) holds, capturing the
# window meanwhile: a capture followed by CHECK failing shows the screen before. Then
# capture until the picture is a new screen (new_screen) and save it as NAME.png. One
# deadline, SECS, for both waits.
shot() {
  local name=$1 title=$2 what=$3 deadline=$((SECONDS + $4)) old tmp="$work/capture.png" captured
  shift 4
  old=$(oldshot "$title")
  while :; do
    captured=false
    capture "$title" "$tmp" && captured=true
    if "$@" >/dev/null 2>&1; then break; fi
    if $captured; then mv "$tmp" "$old"; fi
    if [ $SECONDS -ge $deadline ]; then
      echo "xvfb: timed out waiting for $what" >&2
      cp "$old" "$out/$name-timeout.png" 2>/dev/null || true # what the window showed last
      return 1
    fi
    $captured || sleep 0.1 # nothing to capture yet: poll the window and the log
  done
  echo "xvfb: $what"
  while :; do
    if capture "$title" "$out/$name.png"; then
      if new_screen "$out/$name.png" "$old"; then break; fi
    else
      sleep 0.1 # not viewable yet
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "xvfb: window '$title' did not show a new screen after: $what" >&2
      cp "$old" "$out/$name-before.png" 2>/dev/null || true
      return 1
    fi
  done
  cp "$out/$name.png" "$old" # the screen before the next one, unless before says otherwise
  echo "xvfb: saved $out/$name.png ($(/usr/bin/identify -format '%wx%h' "$out/$name.png"), $changed)"
}
logged() { grep -q -- "$2" "$work/$1.log"; }
logged_times() { [ "$(grep -c -- "$2" "$work/$1.log")" -ge "$3" ]; }

"$work/linkdesk" --issuer "$issuer" --ca-file "$ca" >"$work/app.log" 2>&1 &
pids+=($!)
wait_for "app window" 60 xdotool search --name '^Linkdesk$'
shot linkdesk-signin Linkdesk "sign-in screen" 60 logged app 'screen=signin'
win=$(xdotool search --name '^Linkdesk$' | sed -n 1p)

before Linkdesk
xdotool key --window "$win" space
shot linkdesk-code Linkdesk "signed in, main screen" 60 logged app 'screen=main'

"$work/linkdevice" --issuer "$issuer" --ca-file "$ca" --client-id demo-tv --device-kind tv \
  --device-name "Living room TV" --once >"$work/device.log" 2>&1 &
pids+=($!)
wait_for "device shows a code" 60 logged device 'enter the code'
code=$(grep -A2 'enter the code' "$work/device.log" | grep -oE '[A-Z]{4}-[A-Z]{4}' | sed -n 1p)

xdotool type --window "$win" --delay 60 "${code,,}"
before Linkdesk
xdotool key --window "$win" Return
shot linkdesk-confirm Linkdesk "confirm screen" 60 logged app 'screen=confirm'

# Tab from the device-name field to the buttons, left to right: Back, Decline, then Link device.
before Linkdesk
xdotool key --window "$win" Tab Tab Tab space
shot linkdesk-linked Linkdesk "device linked" 60 logged device 'Linked to'

# A linkdesk:// link opened through the desktop: register the scheme, then the real
# xdg-open starts a second linkdesk, which hands the link to the running window.
"$work/linkdesk" register-scheme
wait_for "xdg-mime knows the linkdesk:// handler" 5 \
  test "$(xdg-mime query default x-scheme-handler/linkdesk)" = com.linkdesk.app.desktop
"$work/linkdevice" --issuer "$issuer" --ca-file "$ca" --client-id demo-tv --device-kind console \
  --device-name "Bedroom console" --once >"$work/device2.log" 2>&1 &
pids+=($!)
wait_for "second device shows a code" 60 logged device2 'enter the code'
code2=$(grep -A2 'enter the code' "$work/device2.log" | grep -oE '[A-Z]{4}-[A-Z]{4}' | sed -n 1p)
enc_issuer=$(printf '%s' "$issuer" | sed 's/:/%3A/g; s#/#%2F#g')
before Linkdesk
/usr/bin/xdg-open "linkdesk://link?issuer=$enc_issuer&user_code=$code2"
shot linkdesk-openlink Linkdesk "confirm screen for the opened link" 60 logged_times app 'screen=confirm' 2
wait_for "link handed to the running window" 5 logged app 'link handed over'
xdotool key --window "$win" Tab Tab Tab space
wait_for "second device linked" 60 logged device2 'Linked to'
if [ "$(pgrep -c -f "^$work/linkdesk( |\$)" || true)" != 1 ]; then
  echo "xvfb: a second linkdesk window is running" >&2; exit 1
fi

# The kiosk, full screen; then a screenshot of it, put on the clipboard, is pasted
# into the app, which reads the QR code in it and links the kiosk.
"$work/linkdesk" kiosk --issuer "$issuer" --client-id linkdesk-kiosk --ca-file "$ca" \
  --device-name "Lobby display" --fullscreen >"$work/kiosk.log" 2>&1 &
pids+=($!)
wait_for "kiosk window" 60 xdotool search --name '^Linkdesk kiosk$'
# The kiosk logs its state before it paints it (the first capture once it was logged
# showed the window still connecting): wait until a capture holds its QR code.
kiosk_shows_code() { logged kiosk 'state=device.ShowingCode' && "$work/readqr" --issuer "$issuer" "$work/capture.png"; }
rm -f "$work/capture.png" # no other window's capture stands in for the kiosk's
shot kiosk "Linkdesk kiosk" "kiosk shows a code" 60 kiosk_shows_code
kiosk_win=$(xdotool search --name '^Linkdesk kiosk$' | sed -n 1p)

xclip -selection clipboard -t image/png -i "$out/kiosk.png" &
pids+=($!)
xdotool windowunmap "$kiosk_win"
xdotool windowfocus --sync "$win"    # no window manager: give the keyboard back by hand
seen=$(grep -c 'screen=code' "$work/app.log" || true)
before Linkdesk
xdotool key --window "$win" space      # "Link another device" has the focus
shot linkdesk-code-again Linkdesk "code screen again" 30 logged_times app 'screen=code' $((seen + 1))
xdotool key --window "$win" ctrl+v     # no text on the clipboard: scan its picture
shot linkdesk-scan-confirm Linkdesk "confirm screen for the pasted picture" 60 logged_times app 'screen=confirm' 3
xdotool key --window "$win" Tab Tab Tab space
wait_for "kiosk linked" 60 logged kiosk 'state=device.Linked'
xdotool windowmap "$kiosk_win"
# The kiosk's screen before is the code it showed (kiosk.png): it was unmapped since.
shot kiosk-linked "Linkdesk kiosk" "kiosk linked, shown again" 60 logged kiosk 'state=device.Linked'
