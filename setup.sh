#!/usr/bin/env bash
# Posko installer. Idempotent: a second run changes nothing and finishes in seconds.
#
#   ./setup.sh dev     laptop / CI: Debian packages, .venv, Posko with its dev extras
#   ./setup.sh kiosk   kiosk unit (Raspberry Pi OS)          - not built yet
#   ./setup.sh ptt     PTT-only unit (Raspberry Pi OS)       - not built yet
#   ./setup.sh hub     command-center server                 - not built yet
set -euo pipefail

cd "$(dirname "$0")"
ROLE="${1:-}"
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
  python3-venv python3-dev gcc           # building the virtual environment
  ca-certificates
)

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

case "$ROLE" in
  dev)
    install_debian_packages "${DEV_PACKAGES[@]}"
    make_venv dev
    say "done. Run Posko: $VENV/bin/posko up    Run the tests: $VENV/bin/pytest"
    ;;
  kiosk|ptt|hub)
    die "role '$ROLE' is not built yet in this version of Posko; use './setup.sh dev' on a laptop"
    ;;
  ""|-h|--help)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    [ -n "$ROLE" ] || exit 2
    ;;
  *)
    die "unknown role '$ROLE'; expected one of: dev, kiosk, ptt, hub"
    ;;
esac
