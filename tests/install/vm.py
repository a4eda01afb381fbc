"""A KVM virtual machine booting the throwaway Debian 12 root, with systemd as PID 1.

`bench/vm_image.sh` builds the machine once beside the root (tests/install/rootfs.py): Debian's
kernel and initramfs, and the root as an ext4 disk. Each VM here boots a qcow2 overlay
of that disk (the image is never written), has no network card (it installs offline, from the
wheelhouse), and gets three virtio-9p shares: a copy of the checkout (read-only, at
/mnt/posko-src), the wheelhouse (read-only, at /var/cache/posko-wheels) and a "job" folder. A
runner service in the image takes the shell scripts `VM.run` drops into that folder, one at a
time, as root, and answers with their output and exit code, so a test drives the machine like
`ThrowawayRoot.run`, and the machine can reboot between two scripts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.install.rootfs import BASE, ROOT, WHEELHOUSE, copy_source
from tests.install.rootfs import skip_reason as root_skip_reason

VM_DIR = BASE.parent / "vm"
SRC_IN_VM = "/mnt/posko-src"


def accelerator() -> str:
    """kvm, or tcg (qemu's emulator: the same machine, some ten times slower) where KVM cannot
    boot a stock kernel: a host whose KVM is PVM (kvm_pvm, itself a guest without hardware
    virtualisation) runs only kernels built as PVM guests, and Debian's hangs at its first
    instruction in long mode. POSKO_VM_ACCEL=kvm|tcg overrides."""
    chosen = os.environ.get("POSKO_VM_ACCEL", "")
    if chosen in ("kvm", "tcg"):
        return chosen
    return "tcg" if Path("/sys/module/kvm_pvm").exists() else "kvm"


ACCEL = accelerator()
QEMU_ACCEL = (["-accel", "tcg,thread=multi", "-cpu", "max"] if ACCEL == "tcg"
              # arch-capabilities: an MSR nested KVM refuses to set.
              else ["-enable-kvm", "-cpu", "host,-arch-capabilities"])
# How much longer everything takes in the machine.
SLOWER = 8 if ACCEL == "tcg" else 1
# Emulated, the hub takes minutes to start: systemd's default start timeout (90 s) would fail
# it, and so would `posko watch`'s own (120 s: on a loaded host the hub restarted by its
# watchdog was stopped by it again and again, never answering). The units' own values
# (WatchdogSec=) are kept.
BOOT_EXTRA = (" systemd.default_timeout_start_sec=900 systemd.setenv=POSKO_WATCH_START_TIMEOUT=900"
              if ACCEL == "tcg" else "")
WHEELS_IN_VM = "/var/cache/posko-wheels"


def skip_reason() -> str | None:
    """Why the VM cannot run here, or None."""
    reason = root_skip_reason()
    if reason:
        return reason
    if ACCEL == "tcg" and os.environ.get("POSKO_TEST_VM") != "1":
        # Emulated, one role's tests take about 20 minutes: too long for every test run.
        return ("this host's KVM cannot boot Debian's kernel and the emulated (TCG) machine takes "
                "~20 min a role: run them with POSKO_TEST_VM=1 .venv/bin/pytest tests/install/test_systemd_vm.py")
    if ACCEL == "kvm":
        try:
            os.close(os.open("/dev/kvm", os.O_RDWR))
        except OSError as e:
            return f"no usable /dev/kvm ({e.strerror}): the VM needs KVM (or POSKO_VM_ACCEL=tcg, slow)"
    for tool in ("qemu-system-x86_64", "qemu-img"):
        if shutil.which(tool) is None:
            return f"needs {tool} (Debian: qemu-system-x86, qemu-utils)"
    if not (VM_DIR / ".complete").exists():
        return f"no VM image: run `bench/vm_image.sh` once (as root; it builds {VM_DIR})"
    want = hashlib.sha256((ROOT / "bench" / "vm_image.sh").read_bytes()
                          + (BASE / "var" / "lib" / "dpkg" / "status").read_bytes()).hexdigest()
    if (VM_DIR / ".complete").read_text().strip() != want:
        return "the VM image is older than bench/vm_image.sh or the throwaway root: run `bench/vm_image.sh` again"
    return None


@dataclass
class Result:
    returncode: int
    stdout: str


class VM:
    """One booted machine on its own overlay disk; `run(script)` runs bash in it as root."""

    def __init__(self, folder: Path, memory_mb: int = 2048, cpus: int = 2, screen: bool = False) -> None:
        self.folder = folder
        self.screen = screen
        self.job = folder / "job"
        for name in ("cmd", "res", "boots"):
            (self.job / name).mkdir(parents=True, exist_ok=True)
        copy_source(folder / "src")
        self.disk = folder / "disk.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw",
                        "-b", str(VM_DIR / "rootfs.raw"), str(self.disk)], check=True)
        self.console = folder / "console.log"
        self.qmp_path = folder / "qmp.sock"
        self.memory_mb, self.cpus = memory_mb, cpus
        self.process: subprocess.Popen | None = None
        self.count = 0
        self.boot_id = ""

    def start(self, timeout: float = 60) -> None:
        def share(tag: str, path: Path, readonly: bool) -> list[str]:
            return ["-virtfs", f"local,path={path},mount_tag={tag},security_model=none,id={tag}"
                    + (",readonly=on" if readonly else "")]

        argv = ["qemu-system-x86_64", *QEMU_ACCEL, "-smp", str(self.cpus),
                "-m", str(self.memory_mb), "-display", "none", "-monitor", "none",
                # A kiosk's screen is a virtio GPU (virtio_gpu's DRM in the guest, which wlroots
                # can drive: qemu's default VGA card, bochs-drm, has no PRIME import and cage
                # refuses it); QMP's screendump shows what it displays.
                *(["-vga", "none", "-device", "virtio-gpu-pci"] if self.screen else []),
                "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
                "-serial", f"file:{self.console}", "-nic", "none", "-no-reboot",
                "-kernel", str(VM_DIR / "vmlinuz"), "-initrd", str(VM_DIR / "initrd.img"),
                "-append", "root=/dev/vda rw console=ttyS0 systemd.show_status=1 panic=5" + BOOT_EXTRA,
                "-drive", f"file={self.disk},if=virtio,format=qcow2,cache=unsafe",
                *share("job", self.job, False), *share("src", self.folder / "src", True),
                *share("wheels", WHEELHOUSE, True)]
        known = self.boots()
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)
        self.boot_id = self.wait_boot(known, timeout * SLOWER)

    def boots(self) -> set[str]:
        return {p.name for p in (self.job / "boots").iterdir() if not p.name.startswith(".")}

    def wait_boot(self, known: set[str], timeout: float) -> str:
        """The id of a boot not in `known`, once its runner answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = self.boots() - known
            if new:
                return new.pop()
            if self.process and self.process.poll() is not None:
                raise AssertionError(f"qemu ended ({self.process.returncode}): "
                                     f"{self.process.stdout.read().decode(errors='replace')}\n{self.tail()}")
            time.sleep(0.2)
        raise AssertionError(f"the VM did not boot in {timeout:.0f} s\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        text = self.console.read_text(errors="replace") if self.console.exists() else ""
        return "--- console\n" + "\n".join(text.splitlines()[-lines:])

    def run(self, script: str, timeout: float = 300, check: bool = True) -> Result:
        self.count += 1
        name = f"{self.count:03d}"
        tmp = self.job / "cmd" / f"{name}.tmp"
        tmp.write_text(script)
        tmp.rename(self.job / "cmd" / f"{name}.sh")
        rc = self.job / "res" / f"{name}.rc"
        timeout *= SLOWER
        deadline = time.monotonic() + timeout
        while not rc.exists():
            if time.monotonic() > deadline:
                out = (self.job / "res" / f"{name}.out")
                raise AssertionError(f"in the VM, no answer in {timeout:.0f} s:\n{script}\n--- so far\n"
                                     f"{out.read_text(errors='replace')[-4000:] if out.exists() else ''}\n{self.tail()}")
            if self.process and self.process.poll() is not None:
                raise AssertionError(f"the VM stopped during:\n{script}\n{self.tail()}")
            time.sleep(0.2)
        result = Result(int(rc.read_text().strip() or 1),
                        (self.job / "res" / f"{name}.out").read_text(errors="replace"))
        if check and result.returncode != 0:
            raise AssertionError(f"in the VM, exit {result.returncode}:\n{script}\n--- output\n"
                                 f"{result.stdout[-6000:]}")
        return result

    def reboot(self, timeout: float = 60) -> str:
        """`systemctl reboot` in the guest; returns the new boot's id once its runner answers.

        The guest shuts down the whole way (systemd stops every unit, unmounts, resets); qemu
        runs with -no-reboot and ends at the reset (an emulated machine's in-place reset hung
        here), and the same disk is booted again.
        """
        known = self.boots()
        # A second from now, so this script answers before the machine goes down.
        self.run("systemd-run -q --on-active=1 systemctl reboot")
        assert self.process is not None
        try:
            self.process.wait(timeout * SLOWER)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the VM did not go down in {timeout * SLOWER:.0f} s\n{self.tail()}") from None
        assert "reboot: Restarting system" in self.console.read_text(errors="replace"), self.tail()
        self.console.rename(self.folder / f"console-{len(known)}.log")
        self.start(timeout)
        assert self.boot_id not in known
        return self.boot_id

    def screendump(self, path: Path) -> Path:
        """What the machine's screen shows now, as a PPM file (qemu's QMP screendump)."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(30)
            sock.connect(str(self.qmp_path))
            stream = sock.makefile("rw")

            def ask(command: dict) -> dict:
                stream.write(json.dumps(command) + "\n")
                stream.flush()
                while True:  # events may come before the answer
                    answer = json.loads(stream.readline())
                    if "return" in answer or "error" in answer:
                        assert "error" not in answer, answer
                        return answer

            json.loads(stream.readline())  # the greeting
            ask({"execute": "qmp_capabilities"})
            ask({"execute": "screendump", "arguments": {"filename": str(path)}})
        return path

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
