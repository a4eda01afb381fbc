#!/usr/bin/env bash
# Build (once) the virtual machine that tests/install boots with a real systemd as PID 1.
#
#   sudo bench/vm_image.sh [ROOT]
#
# ROOT is the throwaway Debian 12 root of bench/install_root.sh (default
# $POSKO_TEST_INSTALL_ROOT/bookworm, else ~/.cache/posko/install-root/bookworm). That root is
# never written: an overlay on it gets Debian's kernel and initramfs (apt-get in a
# chroot: this step needs Debian's registry), a small runner service and an fstab, and the
# merged tree becomes an ext4 disk image. Everything lands in ../vm beside the root:
#
#   vmlinuz, initrd.img   booted with qemu -kernel/-initrd (no boot loader)
#   rootfs.raw            the disk; each test boots a qcow2 overlay on it (the image stays clean)
#   .complete             the stamp the tests check (this script and the root's package list)
#
# Posko itself is not baked in: the tests share the checkout read-only into the VM with
# virtio-9p, so changes to setup.sh or systemd/ need no rebuild. Ends with one JSON line.
set -euo pipefail
SELF="$(realpath "$0")"
cd "$(dirname "$0")/.."
CACHE="${POSKO_TEST_INSTALL_ROOT:-$HOME/.cache/posko/install-root}"
BASE="${1:-$CACHE/bookworm}"
OUT="$(dirname "$BASE")/vm"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
SIZE="${VM_DISK_SIZE:-8G}"
start=$(date +%s)
[ "$(id -u)" -eq 0 ] || { echo "vm_image: run as root (overlay mount, chroot)" >&2; exit 1; }
[ -x "$BASE/usr/sbin/nginx" ] || { echo "vm_image: no throwaway root at $BASE: run bench/install_root.sh first" >&2; exit 1; }
command -v mkfs.ext4 >/dev/null || { echo "vm_image: apt-get install e2fsprogs" >&2; exit 1; }
case "$(realpath -m "$BASE")" in /) echo "vm_image: refusing to use /" >&2; exit 1 ;; esac

# The stamp: this script (what the image holds) and the root's installed packages.
WANT="$(cat "$SELF" "$BASE/var/lib/dpkg/status" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$OUT/.complete" 2>/dev/null)" = "$WANT" ]; then
  echo "vm_image: $OUT is up to date"
  printf '{"bench": "vm_image", "dir": "%s", "rebuilt": false, "seconds": %s}\n' "$OUT" "$(( $(date +%s) - start ))"
  exit 0
fi

BUILD="$OUT/build"
rm -rf "$BUILD" "$OUT/.complete"
mkdir -p "$BUILD/upper" "$BUILD/work" "$BUILD/merged"
M="$BUILD/merged"
mounted=()
cleanup() {
  for ((i=${#mounted[@]}-1; i>=0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
  rm -rf "$BUILD"
}
trap cleanup EXIT
mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$BUILD/upper,workdir=$BUILD/work" "$M"; mounted+=("$M")
for fs in proc sys dev; do mount --rbind "/$fs" "$M/$fs"; mount --make-rslave "$M/$fs"; mounted+=("$M/$fs"); done
cp /etc/resolv.conf "$M/etc/resolv.conf"

# The kernel: Debian's generic one (its cloud flavour has no virtio-9p).
chroot "$M" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
  bash -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends \
    linux-image-amd64 initramfs-tools </dev/null && apt-get clean"

# A machine, not a chroot: services start normally (the build root's policy-rc.d blocked them).
rm -f "$M/usr/sbin/policy-rc.d" "$M/etc/resolv.conf"
echo "/dev/vda / ext4 rw,errors=remount-ro 0 1" > "$M/etc/fstab"
echo posko-vm > "$M/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 posko-vm\n' > "$M/etc/hosts"
: > "$M/etc/machine-id"   # a fresh id at each test's first boot
# No network card: the VM installs offline from the wheelhouse, as tests/install does.
# The runner: takes shell scripts the tests drop into the shared "job" folder and answers
# with their output and exit code (tests/install/vm.py).
cat > "$M/usr/local/sbin/posko-vm-runner" <<'EOF'
#!/bin/bash
# Runs the scripts tests/install/vm.py puts in the 9p share "job": job/cmd/NAME.sh ->
# job/res/NAME.out and job/res/NAME.rc. Also mounts the checkout (src) and the wheelhouse.
set -u
J=/run/posko-vm/job
share() {  # tag mountpoint [ro]
  mkdir -p "$2"
  mountpoint -q "$2" || mount -t 9p -o "trans=virtio,version=9p2000.L,msize=524288${3:+,ro}" "$1" "$2"
}
share job "$J"
share src /mnt/posko-src ro || true
share wheels /var/cache/posko-wheels ro || true
mkdir -p "$J/cmd" "$J/res" "$J/boots"
cat /proc/sys/kernel/random/boot_id > "$J/boots/.new" && mv "$J/boots/.new" "$J/boots/$(cat /proc/sys/kernel/random/boot_id)"
while :; do
  for c in "$J"/cmd/*.sh; do
    [ -e "$c" ] || continue
    n=$(basename "$c" .sh)
    # A script is run once, even when it rebooted the machine before it answered.
    [ -e "$J/res/$n.started" ] && continue
    : > "$J/res/$n.started"
    ( cd / && exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 PIP_NO_INDEX=1 PIP_FIND_LINKS=/var/cache/posko-wheels \
        PIP_DISABLE_PIP_VERSION_CHECK=1 bash -euo pipefail "$c" ) >"$J/res/$n.out" 2>&1 </dev/null
    echo $? > "$J/res/$n.rc.new" && mv "$J/res/$n.rc.new" "$J/res/$n.rc"
  done
  sleep 0.2
done
EOF
chmod 755 "$M/usr/local/sbin/posko-vm-runner"
cat > "$M/etc/systemd/system/posko-vm-runner.service" <<'EOF'
[Unit]
Description=Runs the installer tests' scripts (tests/install/vm.py)
After=local-fs.target
[Service]
ExecStart=/usr/local/sbin/posko-vm-runner
Restart=always
KillMode=process
[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/posko-vm-runner.service "$M/etc/systemd/system/multi-user.target.wants/posko-vm-runner.service"
# Nothing in the test VM waits for a network or timers it does not have.
for t in apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer; do
  rm -f "$M/etc/systemd/system/timers.target.wants/$t"
done

kver=$(ls "$M/lib/modules" | sort -V | tail -1)
cp "$M/boot/vmlinuz-$kver" "$OUT/vmlinuz.new"
cp "$M/boot/initrd.img-$kver" "$OUT/initrd.img.new"
umount -l "$M/proc" "$M/sys" "$M/dev" 2>/dev/null || true
rm -f "$OUT/rootfs.raw.new"
truncate -s "$SIZE" "$OUT/rootfs.raw.new"
mkfs.ext4 -q -F -L posko-vm -d "$M" "$OUT/rootfs.raw.new"
for f in vmlinuz initrd.img rootfs.raw; do mv "$OUT/$f.new" "$OUT/$f"; done
echo "$kver" > "$OUT/kernel-version"
echo "$WANT" > "$OUT/.complete"
used=$(du -sm "$OUT/rootfs.raw" | cut -f1)
echo "vm_image: $OUT ready (kernel $kver, disk ${used} MB used of $SIZE)"
printf '{"bench": "vm_image", "dir": "%s", "kernel": "%s", "disk_mb": %s, "rebuilt": true, "seconds": %s}\n' \
  "$OUT" "$kver" "$used" "$(( $(date +%s) - start ))"
