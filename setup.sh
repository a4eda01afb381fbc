#!/usr/bin/env bash
# Posko installer. Idempotent: a second run changes nothing and finishes in seconds.
#
#   ./setup.sh dev     laptop / CI: Debian packages, .venv, Posko with its dev extras
#   ./setup.sh kiosk   kiosk unit (Raspberry Pi OS Bookworm 64-bit or Debian 12)
#   ./setup.sh ptt     PTT-only unit (Raspberry Pi OS Bookworm 64-bit or Debian 12)
#   ./setup.sh hub     command-center server (Debian 12)
#
# Options of kiosk / ptt / hub (docs/install.md):
#   --hub URL          the hub's base URL (units), e.g. https://hub.polres.example
#   --code CODE        one-time enrolment code from `posko hub units add` (units)
#   --unit-id ID       this unit's id (units; default: the host name)
#   --posko-name NAME  name of the posko shown to residents
#   --server-name NAME the hub's host name in its certificate (hub; default: the host name)
#   --tls-cert FILE --tls-key FILE   use this certificate instead of making one (hub)
#   --wheelhouse DIR   install Python packages from this folder only (offline installs)
#   --read-only-root   prepare Raspberry Pi OS's overlay root (kiosk, ptt; docs/install.md)
#   --packages-only    install the role's Debian packages and stop
#   --dry-run          print every change and make none
set -euo pipefail

cd "$(dirname "$0")"
SRC="$(pwd)"
ROLE="${1:-}"
[ $# -gt 0 ] && shift
VENV="${POSKO_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

DEV_PACKAGES=(
  mosquitto mosquitto-clients            # MQTT broker and the CLI clients
  libopus0 libopus-dev                   # Opus codec for push-to-talk (opuslib loads libopus)
  libportaudio2 portaudio19-dev          # PortAudio for PyAudio
  libasound2-plugins alsa-utils          # ALSA file plugin and tools
  espeak-ng sox libsox-fmt-all           # fallback voice, test speech, audio measuring
  chromium                               # kiosk browser; Playwright drives it in tests
  sqlite3                                # looking into outboxes and hub databases
  ffmpeg                                 # decoding test recordings
  iproute2                               # ss: the PTT bench counts the bytes a talker sends
  nginx                                  # the hub's reverse proxy; tests run it on free ports
  python3-venv python3-dev gcc           # building the virtual environment
  ca-certificates
)
# What every deployed machine needs (the venv is built on the machine: PyAudio compiles).
BASE_PACKAGES=(python3 python3-venv python3-dev gcc ca-certificates curl openssl
               mosquitto mosquitto-clients sqlite3 adduser)
UNIT_PACKAGES=(libopus0 libportaudio2 portaudio19-dev alsa-utils)
KIOSK_PACKAGES=(cage xwayland chromium espeak-ng fonts-noto-core)  # Debian's cage will not start without Xwayland
HUB_PACKAGES=(libopus0 nginx)

# ---------------------------------------------------------------------------------------
# dev (unchanged: CI runs it)

install_debian_packages() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "Debian packages already installed"
    return
  fi
  if [ "${DRY_RUN:-0}" = 1 ]; then
    say "would install Debian packages: ${missing[*]}"
    return
  fi
  command -v apt-get >/dev/null || die "apt-get not found: Posko installs on Debian or Raspberry Pi OS"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "run as root or install sudo to install: ${missing[*]}"
    sudo="sudo"
  fi
  say "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
}

python_ok() {
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null
}

make_venv() {
  local extras="$1"
  python_ok "$PYTHON" || die "$PYTHON is older than Python 3.11 (Posko needs 3.11 or newer)"
  if [ ! -x "$VENV/bin/python" ] || ! python_ok "$VENV/bin/python"; then
    say "creating $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  # Reinstall only when what is installed would change.
  local stamp="$VENV/.posko-installed"
  local want
  want="$extras $(sha256sum pyproject.toml | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c 'import posko' 2>/dev/null; then
    say "Python environment up to date ($VENV)"
    return
  fi
  say "installing Posko into $VENV (extras: $extras)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e ".[$extras]"
  echo "$want" > "$stamp"
}

# ---------------------------------------------------------------------------------------
# kiosk / ptt / hub: a real machine. Every change goes through act/put_file so that
# --dry-run prints it instead, and each step looks first whether it is already done.

PREFIX=/opt/posko            # releases/<version>/ (one venv each) and current -> the running one
ETC=/etc/posko
STATE=/var/lib/posko
UNITDIR=/etc/systemd/system
BROKER_BASE=/etc/posko/broker-base.passwd   # hub: the deployment's own broker logins
BROKER_DIR=/var/lib/posko-broker             # hub: the broker's files the hub rewrites
DRY_RUN=0
CHANGES=0

act() {  # act "what" command...   run it (or print it under --dry-run)
  local what="$1"; shift
  CHANGES=$((CHANGES + 1))
  local shown="$*"
  [ -n "${SECRET:-}" ] && shown="${shown//"$SECRET"/***}"   # passwords are never printed
  if [ "$DRY_RUN" = 1 ]; then say "would $what: $shown"; return 0; fi
  say "$what"
  "$@"
}

put_file() {  # put_file SOURCE DEST MODE OWNER[:GROUP]   install when missing or different
  local src="$1" dest="$2" mode="$3" owner="$4"
  if [ -f "$dest" ] && cmp -s "$src" "$dest" && [ "$(stat -c '%a %U:%G' "$dest")" = "$mode $owner" ]; then
    return 0
  fi
  act "install $dest" install -D -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$src" "$dest"
}

put_text() {  # put_text DEST MODE OWNER < text
  local tmp
  tmp="$(mktemp)"
  cat > "$tmp"
  put_file "$tmp" "$1" "$2" "$3"
  rm -f "$tmp"
}

put_once() {  # put_once DEST MODE OWNER < text   written when absent, never overwritten
  if [ -e "$1" ]; then
    say "keeping $1 (never overwritten; edit it by hand)"
    cat > /dev/null
    return 0
  fi
  put_text "$@"
}

ensure_dir() {  # ensure_dir DIR MODE OWNER[:GROUP]
  local dir="$1" mode="$2" owner="$3"
  if [ -d "$dir" ] && [ "$(stat -c '%a %U:%G' "$dir")" = "$mode $owner" ]; then return 0; fi
  act "make $dir ($mode $owner)" install -d -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$dir"
}

ensure_group() {
  getent group "$1" >/dev/null || act "add group $1" groupadd --system "$1"
}

ensure_user() {  # ensure_user NAME HOME GROUPS...
  local name="$1" home="$2"; shift 2
  if ! getent passwd "$name" >/dev/null; then
    act "add system user $name" useradd --system --user-group --home-dir "$home" --no-create-home \
      --shell /usr/sbin/nologin "$name"
  fi
  local g
  for g in "$@"; do
    ensure_group "$g"
    if ! id -nG "$name" 2>/dev/null | tr ' ' '\n' | grep -qx "$g"; then
      act "add $name to group $g" usermod -a -G "$g" "$name"
    fi
  done
}

random_secret() { "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(24))'; }

source_version() { sed -n 's/^version = "\(.*\)"/\1/p' "$SRC/pyproject.toml" | head -1; }

source_digest() {  # what is being installed: the code, its data and the extras
  (cd "$SRC" && find pyproject.toml posko assistant gateway models firmware kiosk_ui hub \
     -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum \
     | sha256sum | cut -c1-16)
}

role_extras() {
  case "$ROLE" in kiosk) echo kiosk ;; ptt) echo unit ;; hub) echo hub ;; esac
}

install_release() {  # a venv in $PREFIX/releases/<version>, then current -> it
  local extras version digest rel stamp owner=root:root
  extras="$(role_extras)"
  [ -n "${PI_MODEL:-}" ] && [ "$ROLE" != hub ] && extras="$extras,pi"
  version="$(source_version)"
  digest="$(source_digest)"
  rel="$PREFIX/releases/$version"
  stamp="$rel/.posko-installed"
  # On units the updater (as posko) adds releases and switches current; the release made
  # here stays root's, and root never runs anything the posko user could have written.
  [ "$ROLE" != hub ] && owner=posko:posko
  ensure_dir "$PREFIX" 755 "$owner"
  ensure_dir "$PREFIX/releases" 755 "$owner"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$extras $digest" ] \
     && [ "$(stat -c %U "$rel" "$rel/bin/python" "$rel/lib" 2>/dev/null | sort -u)" = root ]; then
    say "Posko $version already installed in $rel ($extras)"
  else
    local pip_args=(-q --no-cache-dir)
    [ -n "$WHEELHOUSE" ] && pip_args+=(--no-index --find-links "$WHEELHOUSE")
    [ -e "$rel" ] && act "remove the old $rel" rm -rf "$rel"
    act "create the venv $rel" "$PYTHON" -m venv "$rel"
    act "install Posko $version [$extras] into $rel" "$rel/bin/python" -m pip install "${pip_args[@]}" "$SRC[$extras]"
    if [ "$DRY_RUN" = 0 ]; then echo "$extras $digest" > "$stamp"; fi
  fi
  if [ "$(readlink "$PREFIX/current" 2>/dev/null)" != "releases/$version" ]; then
    # ln + mv -T replaces the link in one rename: a service never sees no current release.
    act "point $PREFIX/current at $version" sh -c \
      "ln -sfn 'releases/$version' '$PREFIX/.current.new' && mv -T '$PREFIX/.current.new' '$PREFIX/current'"
  fi
}

toml_quote() { "$PYTHON" -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"; }

write_config() {
  local f="$ETC/posko.toml" mqtt_password="$1"
  {
    echo "# Written by ./setup.sh $ROLE on $(date -u +%Y-%m-%d). Never overwritten by setup.sh:"
    echo "# edit it by hand, then \`posko config check\` and restart the services."
    echo "[posko]"
    echo "state_dir = \"$STATE\""
    [ -n "$UNIT_ID" ] && echo "unit_id = $(toml_quote "$UNIT_ID")"
    [ -n "$POSKO_NAME" ] && echo "posko_name = $(toml_quote "$POSKO_NAME")"
    echo
    echo "[mqtt]"
    echo "host = \"127.0.0.1\""
    echo "port = 1883"
    if [ "$ROLE" = hub ]; then
      echo "username = \"hub\""
    else
      echo "username = $(toml_quote "$UNIT_ID")"
    fi
    echo "password = $(toml_quote "$mqtt_password")"
    if [ "$ROLE" = ptt ]; then
      echo
      echo "[unit]"
      echo "assistant_enabled = false   # PTT-only: no voice assistant"
    fi
    if [ "$ROLE" != hub ] && [ -n "$HUB_URL" ]; then
      echo
      echo "[kiosk]   # the hub link of this unit (reports, knowledge base, updates)"
      echo "hub_url = $(toml_quote "$HUB_URL")"
      [ "${HUB_URL%%://*}" = https ] && echo "hub_ca_file = \"$ETC/hub-ca.pem\"   # pinned at enrolment"
    fi
    if [ "$ROLE" = hub ]; then
      echo
      echo "[hub]"
      echo "bind = \"127.0.0.1\""
      echo "port = 18080"
      echo "mqtt_ingest = false   # posko-hub-ingest.service runs it"
      echo "session_cookie_secure = true"
      echo
      echo "[ptt]   # the hub manages the central broker's logins: units and phone members (docs/ptt.md)"
      echo "broker_password_base = \"$BROKER_BASE\"   # hub, arbiter (setup.sh)"
      echo "broker_password_file = \"$BROKER_DIR/units.passwd\""
      echo "broker_acl_file = \"$BROKER_DIR/units.acl\""
      echo "# Mosquitto is reloaded by posko-broker-reload.path when these change (no pid file)."
      echo "# Phones and the console: the broker's WebSocket listener behind nginx (/mqtt)."
      echo "phone_broker_url = \"wss://{host}/mqtt\""
    fi
  } | put_once "$f" 640 root:posko
}

mosquitto_user() {  # mosquitto_user FILE USER PASSWORD [GROUP]   add USER when it is not in FILE
  local file="$1" user="$2" password="$3" group="${4:-mosquitto}"
  if [ -f "$file" ] && grep -q "^$user:" "$file"; then return 0; fi
  [ -f "$file" ] || act "create $file" install -m 640 -o root -g "$group" /dev/null "$file"
  SECRET="$password" act "add MQTT user $user to $file" mosquitto_passwd -b "$file" "$user" "$password"
}

setup_mosquitto_unit() {
  local password="$1" hub_host="${HUB_URL#*://}"
  hub_host="${hub_host%%/*}"; hub_host="${hub_host%%:*}"
  mosquitto_user /etc/mosquitto/posko-local.passwd "$UNIT_ID" "$password"
  if [ ! -f /etc/mosquitto/posko-local.acl ]; then
    # The local broker's ACL (gateway.acl.render_local_acl: the agent as the unit, the kiosk
    # app and read-only users); made from the source with the system Python (stdlib only).
    python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); from gateway.acl import render_local_acl; sys.stdout.write(render_local_acl(sys.argv[2]))' \
      "$SRC" "$UNIT_ID" | put_text /etc/mosquitto/posko-local.acl 640 root:mosquitto
  fi
  # The bridge logs in to the central broker as this unit with the password the hub gives at
  # enrolment (and after a rotation): firmware/bridge_conf.py writes it in (apply_bridge_login).
  sed -e "s/^address .*/address ${hub_host:-hub.polres.example}:8883/" \
      -e "s/UNIT_ID/$UNIT_ID/g" \
      -e "s#^bridge_cafile .*#bridge_cafile $ETC/hub-ca.pem#" \
      "$SRC/systemd/mosquitto/posko-unit.conf" | put_once /etc/mosquitto/conf.d/posko-unit.conf 640 root:mosquitto
}

setup_mosquitto_hub() {
  local hub_password="$1"
  ensure_dir /etc/mosquitto/conf.d 755 root:root
  # The deployment's own logins (hub, arbiter): the base the hub adds the units' and the phone
  # members' logins to (ptt.broker_password_base; the hub, user posko, reads it).
  mosquitto_user "$BROKER_BASE" hub "$hub_password" posko
  put_file "$SRC/systemd/mosquitto/posko-central.conf" /etc/mosquitto/conf.d/posko-central.conf 644 root:root
}

seed_broker_files_hub() {
  # The password file and ACL Mosquitto reads, rewritten by the hub (user posko) on every
  # enrolment, rotation and revocation; setgid: new files keep the group mosquitto, which
  # reads them. posko-broker-reload.path reloads Mosquitto when they change.
  ensure_dir "$BROKER_DIR" 2750 posko:mosquitto
  if [ ! -f "$BROKER_DIR/units.passwd" ]; then
    put_file "$BROKER_BASE" "$BROKER_DIR/units.passwd" 640 posko:mosquitto
  fi
  if [ ! -f "$BROKER_DIR/units.acl" ]; then
    # Until the hub's first rewrite: the ACL gateway/acl.py makes without the hub's data.
    python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); from gateway.acl import render_acl; sys.stdout.write(render_acl())' \
      "$SRC" | put_text "$BROKER_DIR/units.acl" 640 posko:mosquitto
  fi
  if [ -f "$ETC/posko.toml" ] && ! grep -q '^broker_password_file' "$ETC/posko.toml"; then
    say "WARNING: $ETC/posko.toml (kept) does not let the hub manage the broker's logins; add:"
    say "  [ptt]"
    say "  broker_password_base = \"$BROKER_BASE\""
    say "  broker_password_file = \"$BROKER_DIR/units.passwd\""
    say "  broker_acl_file = \"$BROKER_DIR/units.acl\""
  fi
}

apply_bridge_login() {
  # After enrolment: the login the hub gave (kept by posko enroll) goes into the bridge's
  # configuration now; later changes come through posko-bridge-login.path.
  [ -f "$STATE/unit/broker-login.json" ] || return 0
  local restart=()
  [ -d /run/systemd/system ] && restart=(--restart)
  if [ "$DRY_RUN" = 1 ]; then say "would write the broker login into the bridge"; return 0; fi
  python3 -I /usr/local/lib/posko/bridge_conf.py apply "$STATE/unit/broker-login.json" \
    /etc/mosquitto/conf.d/posko-unit.conf "${restart[@]}"
}

setup_tls_hub() {
  local dir="$ETC/tls" name="${SERVER_NAME:-$(hostname -f 2>/dev/null || hostname)}"
  ensure_group posko-tls
  getent passwd mosquitto >/dev/null && ! id -nG mosquitto | tr ' ' '\n' | grep -qx posko-tls \
    && act "let mosquitto read the hub's key" usermod -a -G posko-tls mosquitto
  ensure_dir "$dir" 750 root:posko-tls
  if [ -n "$TLS_CERT" ]; then
    put_file "$TLS_CERT" "$dir/hub.crt" 644 root:root
    put_file "$TLS_KEY" "$dir/hub.key" 640 root:posko-tls
  elif [ ! -f "$dir/hub.crt" ]; then
    # An offline command center has no public CA: the hub makes its own certificate and
    # units pin it at enrolment (docs/install.md). Ten years: nobody renews it in the field.
    act "make the hub's own TLS certificate for $name" openssl req -x509 -newkey ec \
      -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -subj "/CN=$name" \
      -addext "subjectAltName=DNS:$name,DNS:localhost,IP:127.0.0.1" \
      -keyout "$dir/hub.key" -out "$dir/hub.crt"
    act "protect the hub's key" sh -c "chown root:posko-tls '$dir/hub.key' && chmod 640 '$dir/hub.key' && chmod 644 '$dir/hub.crt'"
  else
    say "keeping the hub's certificate $dir/hub.crt"
  fi
}

setup_nginx_hub() {
  local name="${SERVER_NAME:-$(hostname -f 2>/dev/null || hostname)}"
  sed -e "s/SERVER_NAME/$name/g" "$SRC/systemd/nginx/posko-hub.conf" \
    | put_text /etc/nginx/sites-available/posko-hub 644 root:root
  if [ "$(readlink /etc/nginx/sites-enabled/posko-hub 2>/dev/null)" != /etc/nginx/sites-available/posko-hub ]; then
    act "enable the nginx site posko-hub" ln -sfn /etc/nginx/sites-available/posko-hub /etc/nginx/sites-enabled/posko-hub
  fi
  [ -e /etc/nginx/sites-enabled/default ] && act "disable nginx's default site" rm -f /etc/nginx/sites-enabled/default
  # 500 slow clients and 50 live streams (each also an upstream connection) need more than
  # Debian's 768 connections per worker.
  if grep -q 'worker_connections 768;' /etc/nginx/nginx.conf 2>/dev/null; then
    act "raise nginx's worker_connections to 4096" sed -i 's/worker_connections 768;/worker_connections 4096;/' /etc/nginx/nginx.conf
  fi
  return 0
}

setup_kiosk_screen() {
  # The browser runs as its own user with no password and no shell, on tty1 only (the
  # service is its auto-login); nothing else logs in automatically.
  ensure_user posko-screen /var/lib/posko-screen video render input audio
  ensure_dir /var/lib/posko-screen 700 posko-screen:posko-screen
  local cmdline=/boot/firmware/cmdline.txt
  if [ -f "$cmdline" ] && ! grep -q 'consoleblank=0' "$cmdline"; then
    act "turn console blanking off" sed -i '1 s/$/ consoleblank=0/' "$cmdline"
  fi
  if [ "$(systemctl get-default 2>/dev/null || true)" != graphical.target ]; then
    act "boot to the graphical target (the kiosk browser)" systemctl set-default graphical.target
  fi
}

setup_pi_watchdog() {
  # The Pi's hardware watchdog reboots a unit whose kernel or systemd hangs.
  [ -n "${PI_MODEL:-}" ] || return 0
  printf '[Manager]\nRuntimeWatchdogSec=15\nRebootWatchdogSec=2min\n' \
    | put_text /etc/systemd/system.conf.d/posko-watchdog.conf 644 root:root
}

setup_read_only_root() {
  [ "$READ_ONLY_ROOT" = 1 ] || return 0
  command -v raspi-config >/dev/null \
    || die "--read-only-root needs Raspberry Pi OS (raspi-config's overlay file system); see docs/install.md"
  grep -q " $STATE " /proc/mounts \
    || die "--read-only-root: mount a writable partition on $STATE first (docs/install.md)"
  act "turn on the overlay root (after the next reboot)" raspi-config nonint enable_overlayfs
}

role_units() {
  case "$ROLE" in
    kiosk) echo posko-unit posko-kiosk-ui posko-kiosk-browser posko-update-restart posko-bridge-login ;;
    ptt) echo posko-unit posko-update-restart posko-bridge-login ;;
    hub) echo posko-hub posko-hub-streams posko-hub-ingest posko-arbiter posko-broker-reload ;;
  esac
}

install_units() {
  local u changed=0
  local f
  for u in $(role_units); do
    for f in "$SRC/systemd/$u.service" "$SRC/systemd/$u.path"; do
      [ -f "$f" ] || continue
      if ! { [ -f "$UNITDIR/${f##*/}" ] && cmp -s "$f" "$UNITDIR/${f##*/}"; }; then
        changed=1
      fi
      put_file "$f" "$UNITDIR/${f##*/}" 644 root:root
    done
  done
  if [ "$ROLE" != hub ]; then
    # The update guard runs before every start of posko-unit with the system Python, and
    # posko-bridge-login.service writes the broker login into the bridge with it.
    put_file "$SRC/firmware/updater.py" /usr/local/lib/posko/update_guard.py 644 root:root
    put_file "$SRC/firmware/bridge_conf.py" /usr/local/lib/posko/bridge_conf.py 644 root:root
  fi
  if [ "$changed" = 1 ] && [ -d /run/systemd/system ]; then
    act "reload systemd" systemctl daemon-reload
  fi
  for u in $(role_units); do
    local kind=service
    [ -f "$SRC/systemd/$u.path" ] && kind=path   # enabled through its path unit
    if ! systemctl is-enabled -q "$u.$kind" 2>/dev/null; then
      act "enable $u.$kind" systemctl enable -q "$u.$kind"
    fi
  done
  systemctl is-enabled -q mosquitto.service 2>/dev/null || act "enable mosquitto" systemctl enable -q mosquitto.service
  if [ "$ROLE" = hub ]; then
    systemctl is-enabled -q nginx.service 2>/dev/null || act "enable nginx" systemctl enable -q nginx.service
  fi
  if [ -d /run/systemd/system ] && [ "$DRY_RUN" = 0 ] && [ "$CHANGES" -gt 0 ]; then
    act "(re)start Posko's services" systemctl restart mosquitto.service \
      $(path_started_units -v | grep -vx posko-kiosk-browser | sed 's/$/.service/')
    # The screen's browser needs a display that may not be plugged in yet (a unit set up at
    # the bench): it is started without waiting for it, and keeps trying (Restart=always).
    if [ "$ROLE" = kiosk ]; then
      act "start the kiosk browser on the screen (journalctl -u posko-kiosk-browser if it stays dark)" \
        systemctl restart --no-block posko-kiosk-browser.service
    fi
  fi
  # nginx reads the hub's site only when it (re)starts: restart it under a running systemd.
  if [ "$ROLE" = hub ] && [ -d /run/systemd/system ] && [ "$DRY_RUN" = 0 ] && [ "$CHANGES" -gt 0 ]; then
    act "restart nginx (the hub's site)" systemctl restart nginx.service
  fi
  # Enabling a path unit starts it only at the next boot: start it now, under systemd.
  if [ -d /run/systemd/system ]; then
    for u in $(path_started_units); do
      systemctl is-active -q "$u.path" || act "start $u.path" systemctl start "$u.path"
    done
  fi
}

path_started_units() {  # the role's units started by a path unit (with -v: all the others)
  local u
  for u in $(role_units); do
    if [ -f "$SRC/systemd/$u.path" ]; then [ "${1:-}" = -v ] || echo "$u"
    else [ "${1:-}" = -v ] && echo "$u"; fi
  done
  return 0
}

pin_hub_cert() {
  [ "${HUB_URL%%://*}" = https ] || return 0
  if [ ! -f "$ETC/hub-ca.pem" ]; then
    # Pin the hub's certificate: it is fetched once, here, while the maintainer compares its
    # fingerprint with the one `posko doctor` shows on the hub (docs/install.md).
    local hostport="${HUB_URL#https://}"; hostport="${hostport%%/*}"
    [[ "$hostport" == *:* ]] || hostport="$hostport:443"
    if ! act "pin the hub's certificate from $hostport" sh -c \
      "timeout 15 openssl s_client -connect '$hostport' -servername '${hostport%%:*}' </dev/null 2>/dev/null \
        | openssl x509 -outform PEM > '$ETC/hub-ca.pem.new' && chmod 644 '$ETC/hub-ca.pem.new' \
        && mv '$ETC/hub-ca.pem.new' '$ETC/hub-ca.pem'"; then
      rm -f "$ETC/hub-ca.pem.new"
      say "WARNING: the hub at $hostport did not answer; its certificate is NOT pinned yet."
      say "         Run this again when the hub is reachable (nothing else is redone)."
      return 0
    fi
    [ "$DRY_RUN" = 1 ] || say "hub certificate $(openssl x509 -in "$ETC/hub-ca.pem" -noout -fingerprint -sha256)"
    [ "$DRY_RUN" = 1 ] || say "compare it with the fingerprint \`posko doctor\` shows on the hub"
  fi
}

enrol_unit() {
  [ -n "$CODE" ] || { say "no --code: enrol later with: sudo -u posko $PREFIX/current/bin/posko enroll --hub URL --code CODE"; return 0; }
  [ -n "$HUB_URL" ] || die "--code needs --hub URL"
  if [ -s "$STATE/unit/hub-token" ]; then say "already enrolled (token in $STATE/unit/hub-token)"; return 0; fi
  act "enrol $UNIT_ID with $HUB_URL" runuser -u posko -- env POSKO_CONFIG="$ETC/posko.toml" \
    REQUESTS_CA_BUNDLE="$ETC/hub-ca.pem" "$PREFIX/current/bin/posko" enroll --hub "$HUB_URL" --code "$CODE" --unit "$UNIT_ID"
}

deploy_role() {
  [ "$(id -u)" -eq 0 ] || [ "$DRY_RUN" = 1 ] || die "run ./setup.sh $ROLE as root (sudo ./setup.sh $ROLE ...)"
  PI_MODEL="$(tr -d '\0' 2>/dev/null < /proc/device-tree/model | grep -o 'Raspberry Pi.*' || true)"
  local packages=("${BASE_PACKAGES[@]}")
  case "$ROLE" in
    kiosk) packages+=("${UNIT_PACKAGES[@]}" "${KIOSK_PACKAGES[@]}") ;;
    ptt) packages+=("${UNIT_PACKAGES[@]}") ;;
    hub) packages+=("${HUB_PACKAGES[@]}") ;;
  esac
  # Raspberry Pi OS calls Debian's chromium chromium-browser in older images.
  if [ "$ROLE" = kiosk ] && ! apt-cache show chromium >/dev/null 2>&1 && apt-cache show chromium-browser >/dev/null 2>&1; then
    packages=("${packages[@]/#chromium/chromium-browser}")
  fi
  install_debian_packages "${packages[@]}"
  [ "$PACKAGES_ONLY" = 1 ] && { say "packages of role $ROLE installed"; return 0; }

  if [ "$ROLE" != hub ]; then
    UNIT_ID="${UNIT_ID:-$(hostname -s)}"
    [[ "$UNIT_ID" =~ ^[A-Za-z0-9-]{1,64}$ ]] || die "--unit-id '$UNIT_ID': letters, digits and '-' only"
    ensure_user posko "$STATE" audio gpio
  else
    ensure_user posko "$STATE"
  fi
  ensure_dir "$ETC" 755 root:root
  ensure_dir "$STATE" 700 posko:posko
  install_release

  local mqtt_password=""
  [ -f "$ETC/posko.toml" ] || mqtt_password="$(random_secret)"
  [ "$ROLE" != hub ] && [ -n "$HUB_URL" ] && pin_hub_cert
  write_config "$mqtt_password"
  case "$ROLE" in
    kiosk|ptt)
      [ -n "$mqtt_password" ] && setup_mosquitto_unit "$mqtt_password"
      [ "$ROLE" = kiosk ] && setup_kiosk_screen
      setup_pi_watchdog
      setup_read_only_root
      ;;
    hub)
      [ -n "$mqtt_password" ] && setup_mosquitto_hub "$mqtt_password"
      if [ ! -f "$ETC/arbiter.env" ]; then
        local arbiter_password
        arbiter_password="$(random_secret)"
        mosquitto_user "$BROKER_BASE" arbiter "$arbiter_password" posko
        printf 'POSKO_MQTT_PASSWORD=%s\n' "$arbiter_password" | put_once "$ETC/arbiter.env" 640 root:posko
      fi
      seed_broker_files_hub
      setup_tls_hub
      setup_nginx_hub
      ;;
  esac
  install_units
  if [ "$ROLE" != hub ]; then
    enrol_unit
    apply_bridge_login
  fi
  if [ "$DRY_RUN" = 1 ]; then
    say "dry run: $CHANGES change(s) would be made"
  elif [ "$CHANGES" -eq 0 ]; then
    say "nothing to change: role $ROLE is installed"
  else
    say "done: role $ROLE installed ($CHANGES change(s)); check it with: $PREFIX/current/bin/posko doctor"
  fi
}

HUB_URL="" CODE="" UNIT_ID="" POSKO_NAME="" SERVER_NAME="" TLS_CERT="" TLS_KEY=""
WHEELHOUSE="" READ_ONLY_ROOT=0 PACKAGES_ONLY=0
parse_options() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --hub) HUB_URL="${2:?--hub needs a URL}"; shift 2 ;;
      --code) CODE="${2:?--code needs a code}"; shift 2 ;;
      --unit-id) UNIT_ID="${2:?--unit-id needs an id}"; shift 2 ;;
      --posko-name) POSKO_NAME="${2:?--posko-name needs a name}"; shift 2 ;;
      --server-name) SERVER_NAME="${2:?--server-name needs a host name}"; shift 2 ;;
      --tls-cert) TLS_CERT="$(realpath "${2:?--tls-cert needs a file}")"; shift 2 ;;
      --tls-key) TLS_KEY="$(realpath "${2:?--tls-key needs a file}")"; shift 2 ;;
      --wheelhouse) WHEELHOUSE="$(realpath "${2:?--wheelhouse needs a folder}")"; shift 2 ;;
      --read-only-root) READ_ONLY_ROOT=1; shift ;;
      --packages-only) PACKAGES_ONLY=1; shift ;;
      --dry-run) DRY_RUN=1; shift ;;
      *) die "unknown option '$1' (see ./setup.sh --help)" ;;
    esac
  done
  [ -z "$TLS_CERT" ] || [ -n "$TLS_KEY" ] || die "--tls-cert needs --tls-key"
  [ "$READ_ONLY_ROOT" = 0 ] || [ "$ROLE" != hub ] || die "--read-only-root is for kiosk and ptt units"
  # Refused before any change where the OS cannot do it (Debian 12 on a PC has no overlay root).
  [ "$READ_ONLY_ROOT" = 0 ] || command -v raspi-config >/dev/null \
    || die "--read-only-root needs Raspberry Pi OS (raspi-config's overlay file system); see docs/install.md"
  [[ "$UNIT_ID" =~ ^[A-Za-z0-9-]{0,64}$ ]] || die "--unit-id '$UNIT_ID': letters, digits and '-' only"
  return 0
}

case "$ROLE" in
  dev)
    install_debian_packages "${DEV_PACKAGES[@]}"
    make_venv dev
    say "done. Run Posko: $VENV/bin/posko up    Run the tests: $VENV/bin/pytest"
    ;;
  kiosk|ptt|hub)
    parse_options "$@"
    deploy_role
    ;;
  packages)  # ./setup.sh packages ROLE: the Debian packages a role installs, one a line
    case "${1:-}" in
      dev) printf '%s\n' "${DEV_PACKAGES[@]}" ;;
      kiosk) printf '%s\n' "${BASE_PACKAGES[@]}" "${UNIT_PACKAGES[@]}" "${KIOSK_PACKAGES[@]}" ;;
      ptt) printf '%s\n' "${BASE_PACKAGES[@]}" "${UNIT_PACKAGES[@]}" ;;
      hub) printf '%s\n' "${BASE_PACKAGES[@]}" "${HUB_PACKAGES[@]}" ;;
      *) die "packages: expected one of dev, kiosk, ptt, hub" ;;
    esac
    ;;
  ""|-h|--help)
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    [ -n "$ROLE" ] || exit 2
    ;;
  *)
    die "unknown role '$ROLE'; expected one of: dev, kiosk, ptt, hub"
    ;;
esac
