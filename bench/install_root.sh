#!/usr/bin/env bash
# Build (once) the throwaway Debian 12 root that tests/install runs setup.sh in.
#
#   sudo bench/install_root.sh [DIR]
#
# DIR defaults to $POSKO_TEST_INSTALL_ROOT/bookworm, else ~/.cache/posko/install-root/bookworm:
# outside the checkout on purpose, since setuptools walks every file under the project folder
# on each `pip install .` and a whole Debian root there makes that take minutes.
# debootstrap makes a minimal bookworm; then each role's Debian packages are installed into
# it by setup.sh itself (`setup.sh ROLE --packages-only`, run in the chroot), so the tests
# find every package present and need no network. Never run against the machine's own root.
# Prints what it did and ends with one JSON line.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-${POSKO_TEST_INSTALL_ROOT:-$HOME/.cache/posko/install-root}/bookworm}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
start=$(date +%s)
[ "$(id -u)" -eq 0 ] || { echo "install_root: run as root (debootstrap, chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "install_root: apt-get install debootstrap" >&2; exit 1; }
case "$(realpath -m "$DIR")" in /) echo "install_root: refusing to use /" >&2; exit 1 ;; esac

if [ ! -x "$DIR/usr/bin/python3" ]; then
  mkdir -p "$DIR"
  debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,python3,python3-venv,ca-certificates,passwd,adduser \
    bookworm "$DIR" "$MIRROR"
fi
# apt inside the root uses the same mirror; no services start while packages install.
echo "deb $MIRROR bookworm main" > "$DIR/etc/apt/sources.list"
printf '#!/bin/sh\nexit 101\n' > "$DIR/usr/sbin/policy-rc.d"; chmod 755 "$DIR/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$DIR/etc/resolv.conf" 2>/dev/null || true
mkdir -p "$DIR/usr/src/posko-setup"
cp setup.sh "$DIR/usr/src/posko-setup/setup.sh"
mounted=()
cleanup() { for m in "${mounted[@]}"; do umount -l "$m" 2>/dev/null || true; done; }
trap cleanup EXIT
for fs in proc sys dev; do
  mountpoint -q "$DIR/$fs" || { mount --rbind "/$fs" "$DIR/$fs"; mounted+=("$DIR/$fs"); }
done
for role in ptt kiosk hub; do
  chroot "$DIR" /usr/src/posko-setup/setup.sh "$role" --packages-only
done
chroot "$DIR" apt-get clean
# Python wheels for every role, so that setup.sh in the root installs with no index
# (`--wheelhouse`, PIP_NO_INDEX); built here with the checkout's Python (cp311 like bookworm's).
WH="$(dirname "$DIR")/wheelhouse"
PY="${PYTHON:-.venv/bin/python}"
# Built again whenever the dependencies in pyproject.toml changed; the tests check the stamp.
WANT="$("$PY" bench/deps_stamp.py pyproject.toml)"
if [ "$(cat "$WH/.complete" 2>/dev/null)" != "$WANT" ]; then
  "$PY" -m pip wheel -q -w "$WH" ".[kiosk,hub]" "setuptools>=77" wheel pip
  rm -f "$WH"/posko-*.whl   # setup.sh builds Posko itself from the source it is given
  echo "$WANT" > "$WH/.complete"
fi
size=$(du -smx "$DIR" | cut -f1)
echo "install_root: $DIR ready (${size} MB)"
printf '{"bench": "install_root", "dir": "%s", "size_mb": %s, "seconds": %s}\n' \
  "$DIR" "$size" "$(( $(date +%s) - start ))"
