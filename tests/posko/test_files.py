"""posko.files: private folders and files whatever the process umask is."""

from __future__ import annotations

import os

from posko.files import private_dir, private_file, umask


def _mode(path) -> int:
    return path.stat().st_mode & 0o777


def test_private_dir_and_file_under_a_loose_umask(tmp_path):
    with umask(0o022):
        folder = private_dir(tmp_path / "a" / "b")
        assert _mode(tmp_path / "a") == 0o700 and _mode(folder) == 0o700
        file = private_file(folder / "x.db")
        assert _mode(file) == 0o600
        loose = folder / "loose"
        loose.write_text("personal data")
        loose.chmod(0o644)
        private_file(loose)
        assert _mode(loose) == 0o600 and loose.read_text() == "personal data"


def test_an_existing_shared_folder_is_left_alone_when_asked(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    private_file(shared / "hub.db", narrow_dir=False)
    assert shared.stat().st_mode & 0o7777 == 0o1777
    assert _mode(shared / "hub.db") == 0o600
    private_dir(shared)
    assert _mode(shared) == 0o700


def test_umask_is_restored(tmp_path):
    before = os.umask(0o022)
    try:
        with umask():
            (tmp_path / "f").write_text("x")
        assert _mode(tmp_path / "f") == 0o600
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(before)
