"""The outbox on disk: one transaction per report, orphans swept, disk full, maintainer CLI."""

from __future__ import annotations

import errno
import io
import os
import random
import time

import pytest
from click.testing import CliRunner
from PIL import Image

from kiosk_ui import outbox as outbox_mod
from kiosk_ui.app import create_app
from kiosk_ui.cli import outbox as outbox_cli
from kiosk_ui.outbox import Outbox, OutboxFull, outbox_stats
from kiosk_ui.photos import prepare_photo
from tests.kiosk_ui.conftest import fill_disk, make_settings

REPORT = {"category": "kehilangan", "description": "dompet hilang",
          "occurred_at": "2026-11-20T21:10:00+07:00", "location": {"text": "Posko"}}


def png(seed: int = 1, size=(800, 600)) -> bytes:
    rnd = random.Random(seed)
    out = io.BytesIO()
    Image.frombytes("RGB", size, rnd.randbytes(size[0] * size[1] * 3)).save(out, "PNG")
    return out.getvalue()


def files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_submit_stores_report_outbox_row_and_photo_together(tmp_path) -> None:
    box = Outbox.open(tmp_path / "o")
    photo = prepare_photo(png())
    receipt = box.submit(REPORT, [photo])
    item = box.get(receipt.id)
    assert item.state == "pending" and item.ticket == receipt.ticket
    assert item.body == dict(REPORT, id=receipt.id, ticket=receipt.ticket, pin=receipt.pin,
                             photos=[photo.sha256])
    assert box.read_photo(photo.sha256) == photo.data
    assert files(box.photo_dir) == [f"{photo.sha256}.jpg"]
    # the database is in WAL mode with full sync, as the durability contract needs
    with box._connect() as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert box.get(receipt.ticket) == item  # maintainers may use the ticket too


def test_a_failed_commit_leaves_no_photo_behind(tmp_path, monkeypatch) -> None:
    box = Outbox.open(tmp_path / "o")

    def crash(*args, **kwargs):
        raise OutboxFull(errno.ENOSPC, "disk full during commit")

    monkeypatch.setattr(box, "_insert", crash)
    with pytest.raises(OutboxFull):
        box.submit(REPORT, [prepare_photo(png())])
    assert files(box.photo_dir) == [] and box.list() == []


def test_enospc_at_the_write_edge_is_outbox_full_and_leaves_nothing(tmp_path, monkeypatch) -> None:
    box = Outbox.open(tmp_path / "o")
    real_write = os.write
    calls = {"n": 0}

    def write(fd, data):
        calls["n"] += 1
        if calls["n"] > 1:  # the first chunk lands, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, bytes(data)[:4096])

    monkeypatch.setattr(outbox_mod.os, "write", write)
    with pytest.raises(OutboxFull):
        box.submit(REPORT, [prepare_photo(png())])
    monkeypatch.setattr(outbox_mod.os, "write", real_write)
    assert files(box.photo_dir) == [] and box.list() == []


def test_open_sweeps_temporary_and_unreferenced_photos_but_keeps_real_ones(tmp_path) -> None:
    box = Outbox.open(tmp_path / "o")
    photo = prepare_photo(png())
    box.submit(REPORT, [photo])
    orphan = box.photo_dir / ("a" * 64 + ".jpg")
    orphan.write_bytes(b"orphan from a crash before the commit")
    half = box.photo_dir / ("b" * 64 + ".123.abcdef.tmp")
    half.write_bytes(b"half a photo")
    young = box.photo_dir / ("c" * 64 + ".jpg")
    young.write_bytes(b"another process may be about to commit this one")
    old = time.time() - 120
    for path in (orphan, half, box.photo_path(photo.sha256)):
        os.utime(path, (old, old))
    Outbox.open(tmp_path / "o")
    assert files(box.photo_dir) == sorted([f"{photo.sha256}.jpg", young.name])


def test_stats_count_pending_parked_and_oldest_age(tmp_path, state_dir) -> None:
    settings = make_settings(tmp_path / "cfg", POSKO_POSKO_STATE_DIR=str(state_dir))
    assert outbox_stats(settings) == {"pending": 0, "oldest_pending_s": 0.0, "parked": 0}
    box = Outbox.open(outbox_mod.outbox_dir(settings))
    a = box.submit(REPORT)
    box.submit(REPORT)
    c = box.submit(REPORT)
    box.park(a.id, "403 forbidden")
    box.mark_synced(c.id)
    with box._tx() as db:
        db.execute("UPDATE reports SET created_at = created_at - 600")
    stats = outbox_stats(settings)
    assert stats["pending"] == 1 and stats["parked"] == 1
    assert 600 <= stats["oldest_pending_s"] < 700


def test_disk_full_while_saving_tells_the_resident_to_call_110_and_keeps_nothing(tmp_path, tiny_fs) -> None:
    settings = make_settings(tmp_path / "cfg", POSKO_KIOSK_OUTBOX_PATH=str(tiny_fs / "outbox"))
    app = create_app({"SETTINGS": settings, "START_BRAIN": False})
    client = app.test_client()
    box = app.extensions["kiosk"].outbox
    filler = fill_disk(tiny_fs)
    form = {"category": "pencurian", "description": "motor hilang", "where": "here"}
    response = client.post("/api/lapor", data=dict(form, photo=(io.BytesIO(png(2)), "p.png")),
                           content_type="multipart/form-data")
    assert response.status_code == 507
    body = response.get_json()
    assert body["ok"] is False and body["error"] == "disk_full"
    assert "110" in body["message"] and "petugas" in body["message"] and "ticket" not in body
    # nothing half-written: no report, no photo, no temporary file
    assert box.list() == [] and files(box.photo_dir) == []
    # a report without a photo either really commits or is refused; never in between
    response = client.post("/api/lapor", data=form)
    if response.status_code == 200:
        ticket = response.get_json()["ticket"].replace("-", "")
        assert [i.ticket for i in Outbox.open(tiny_fs / "outbox").list()] == [ticket]
    else:
        assert response.status_code == 507 and box.list() == []
    before = len(box.list())
    filler.unlink()  # the officer frees space: saving works again
    response = client.post("/api/lapor", data=dict(form, photo=(io.BytesIO(png(3)), "p.png")),
                           content_type="multipart/form-data")
    assert response.status_code == 200
    assert len(Outbox.open(tiny_fs / "outbox").list()) == before + 1


def test_maintainer_commands_list_show_retry_purge(tmp_path, state_dir) -> None:
    settings = make_settings(tmp_path / "cfg", POSKO_POSKO_STATE_DIR=str(state_dir))
    box = Outbox.open(outbox_mod.outbox_dir(settings))
    parked = box.submit(dict(REPORT, reporter={"name": "Sari", "phone": "+6281234567890"}))
    box.park(parked.id, "403 forbidden: the hub refused this report (blocked phone number)")
    synced = box.submit(REPORT)
    box.mark_synced(synced.id)
    runner = CliRunner()

    result = runner.invoke(outbox_cli, ["list"])
    assert result.exit_code == 0, result.output
    assert "0 pending" in result.output and "1 parked" in result.output
    assert parked.id in result.output and "blocked phone number" in result.output

    result = runner.invoke(outbox_cli, ["show", parked.ticket])
    assert result.exit_code == 0 and "parked    403" in result.output
    assert "+6281234567890" not in result.output and parked.pin not in result.output.split("pin")[-1][:12]
    assert "+6281234567890" in runner.invoke(outbox_cli, ["show", parked.id, "--reveal"]).output
    assert runner.invoke(outbox_cli, ["show", "nope"]).exit_code == 1

    result = runner.invoke(outbox_cli, ["retry", parked.id])
    assert result.exit_code == 0 and box.get(parked.id).state == "pending"

    result = runner.invoke(outbox_cli, ["purge", "--synced", "--older-than-days", "0"])
    assert result.exit_code == 0 and "purged 1" in result.output
    assert [i.id for i in box.list()] == [parked.id]
    assert runner.invoke(outbox_cli, ["purge"]).exit_code != 0  # --synced is required


def test_the_outbox_and_its_wal_and_photos_are_private_to_the_kiosk_user(tmp_path) -> None:
    """Names, phone numbers and PINs: no other local user may read them (0700 / 0600),
    even when the process's umask would allow it."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        box = Outbox.open(tmp_path / "outbox")
        box.submit(REPORT, [prepare_photo(png())])
    finally:
        os.umask(old)
    folder = tmp_path / "outbox"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "photos").stat().st_mode) == 0o700
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert any(p.name == "outbox.db-wal" for p in files), [p.name for p in files]
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
