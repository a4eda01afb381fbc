"""A throwaway Debian 12 root for installer tests: never the machine's own root.

`bench/install_root.sh` builds the root once (debootstrap + every role's Debian packages)
under $POSKO_TEST_INSTALL_ROOT, else ~/.cache/posko/install-root (outside the checkout:
setuptools walks the whole project folder on every `pip install .`). Each test gets an overlay on top of it (the cached
root is never written), its own mount namespace and its own network namespace (loopback
only, so services bind their usual ports without meeting anyone else's) and its own PID
namespace (whatever the commands start ends with them), and runs commands in it with chroot. The source tree is copied in (pip builds in the source folder).
"""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("POSKO_TEST_INSTALL_ROOT", Path.home() / ".cache" / "posko" / "install-root"))
BASE = CACHE / "bookworm"
WHEELHOUSE = CACHE / "wheelhouse"
SRC_IN_ROOT = "/usr/src/posko"
WHEELS_IN_ROOT = "/var/cache/posko-wheels"


def skip_reason() -> str | None:
    """Why the throwaway root cannot be used here, or None."""
    if os.geteuid() != 0:
        return "needs root (mount namespaces, chroot)"
    if not (BASE / "usr" / "bin" / "python3").exists() or not (BASE / "usr" / "sbin" / "nginx").exists():
        return ("no throwaway root: run `bench/install_root.sh` once (as root; debootstrap "
                f"bookworm into {BASE})")
    if not (WHEELHOUSE / ".complete").exists():
        return "no wheelhouse: run `bench/install_root.sh` once (it builds the wheelhouse beside the root)"
    want = runpy.run_path(str(ROOT / "bench" / "deps_stamp.py"))["stamp"](ROOT / "pyproject.toml")
    if (WHEELHOUSE / ".complete").read_text().strip() != want:
        return ("the wheelhouse was built for other dependencies in pyproject.toml: "
                "run `bench/install_root.sh` again")
    if shutil.which("unshare") is None:
        return "needs unshare (util-linux)"
    return None


def copy_source(dest: Path) -> None:
    """The checkout's tracked and new files (not .venv, var, caches) into dest."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, check=True).stdout.split(b"\0")
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest.parent / "src.tar"
    with tarfile.open(archive, "w") as tar:
        for name in files:
            if name and (ROOT / name.decode()).is_file():
                tar.add(ROOT / name.decode(), arcname=name.decode())
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="fully_trusted")
    archive.unlink()


class ThrowawayRoot:
    """An overlay of the cached root; `run(script)` runs bash in it as root, via chroot."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        for name in ("upper", "work", "merged", "src"):
            (folder / name).mkdir(parents=True, exist_ok=True)
        copy_source(folder / "src")

    @property
    def upper(self) -> Path:
        """What the tests' commands changed (the cached root stays as it was)."""
        return self.folder / "upper"

    def run(self, script: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        m = self.folder / "merged"
        outer = f"""set -e
mount -t overlay overlay -o lowerdir={BASE},upperdir={self.folder}/upper,workdir={self.folder}/work {m}
mount -t proc proc {m}/proc
mount --rbind /sys {m}/sys
mount -t tmpfs -o mode=755 tmpfs {m}/run
mount --rbind /dev {m}/dev
mkdir -p {m}{SRC_IN_ROOT} {m}{WHEELS_IN_ROOT}
mount --bind {self.folder}/src {m}{SRC_IN_ROOT}
mount --bind -o ro {WHEELHOUSE} {m}{WHEELS_IN_ROOT}
ip link set lo up
chroot {m} /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root LANG=C.UTF-8 PIP_NO_INDEX=1 PIP_FIND_LINKS={WHEELS_IN_ROOT} PIP_DISABLE_PIP_VERSION_CHECK=1 \
  /bin/bash -euo pipefail -c "$1"
"""
        # --pid --fork: this bash is PID 1 of its own PID namespace; when it returns, the
        # kernel ends every process the commands started (daemons included).
        result = subprocess.run(["unshare", "--mount", "--net", "--pid", "--fork", "--propagation", "private",
                                 "bash", "-c", outer, "in-root", script],
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"in the throwaway root, exit {result.returncode}:\n{script}\n"
                                 f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}")
        return result


@pytest.fixture
def throwaway_root(tmp_path: Path) -> ThrowawayRoot:
    reason = skip_reason()
    if reason:
        pytest.skip(f"throwaway Debian root not available: {reason}")
    return ThrowawayRoot(tmp_path / "root")
