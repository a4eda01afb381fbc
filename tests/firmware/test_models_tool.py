"""`posko models` against a local HTTP server the test starts (resume, checksums, install)."""

from __future__ import annotations

import hashlib
import os
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from firmware.models_cli import models
from models.manifest import ManifestError, read_manifest
from models.paths import asr_model_path, tts_voice_path
from posko.config import load_settings

pytestmark = pytest.mark.timeout(120)


class FileServer:
    """Serves bytes by path with Range support; can cut the first N responses midway."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cuts: dict[str, int] = {}
        self.requests: list[tuple[str, str]] = []  # (path, Range header)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path
                rng = self.headers.get("Range", "")
                server.requests.append((path, rng))
                data = server.files.get(path)
                if data is None:
                    self.send_error(404)
                    return
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                if start >= len(data):
                    self.send_response(416)
                    self.end_headers()
                    return
                body = data[start:]
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(body)))
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if server.cuts.get(path, 0) > 0:
                    server.cuts[path] -= 1
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # the link drops mid-download
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = FileServer()
    yield s
    s.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest(tmp_path: Path, name: str, files: list[dict], kind: str = "tts") -> Path:
    lines = ["[[model]]", f'name = "{name}"', f'kind = "{kind}"', 'language = "id"',
             'licence = "test data"', ""]
    for f in files:
        lines += ["[[model.files]]"] + [f"{k} = {v!r}".replace("'", '"') if isinstance(v, str)
                                        else f"{k} = {str(v).lower()}" for k, v in f.items()] + [""]
    path = tmp_path / "manifest.toml"
    path.write_text("\n".join(lines))
    return path


def run(*args: str):
    return CliRunner().invoke(models, list(args), catch_exceptions=False)


def test_cut_download_resumes_with_range_and_is_verified(server, state_dir, tmp_path) -> None:
    blob = os.urandom(300_000)
    server.files["/v/voice.onnx"] = blob
    server.files["/v/voice.onnx.json"] = b'{"audio": {"sample_rate": 16000}}'
    server.cuts["/v/voice.onnx"] = 1
    m = manifest(tmp_path, "test-voice", [
        {"url": server.url + "/v/voice.onnx", "path": "voice.onnx", "size": len(blob), "sha256": sha(blob)},
        {"url": server.url + "/v/voice.onnx.json", "path": "voice.onnx.json",
         "sha256": sha(server.files["/v/voice.onnx.json"])}])
    first = run("fetch", "test-voice", "--manifest", str(m), "--retries", "0")
    assert first.exit_code == 1 and "run the same command again to resume" in first.output
    part = state_dir / "models" / ".partial" / "test-voice" / "voice.onnx"
    assert 0 < part.stat().st_size < len(blob)
    cut_at = part.stat().st_size
    second = run("fetch", "test-voice", "--manifest", str(m))
    assert second.exit_code == 0, second.output
    assert ("/v/voice.onnx", f"bytes={cut_at}-") in server.requests
    installed = state_dir / "models" / "test-voice" / "voice.onnx"
    assert installed.read_bytes() == blob and not part.exists()
    assert "OK" in run("verify", "--manifest", str(m)).output


def test_resume_within_one_run_and_progress_bar(server, state_dir, tmp_path) -> None:
    blob = os.urandom(200_000)
    server.files["/a.bin"] = blob
    server.cuts["/a.bin"] = 2
    m = manifest(tmp_path, "two-cuts", [{"url": server.url + "/a.bin", "path": "a.bin", "sha256": sha(blob)}])
    result = run("fetch", "two-cuts", "--manifest", str(m), "--retries", "3")
    assert result.exit_code == 0, result.output
    assert sum(1 for p, r in server.requests if p == "/a.bin" and r) == 2
    assert (state_dir / "models" / "two-cuts" / "a.bin").read_bytes() == blob


def test_bad_checksum_is_refused_and_nothing_is_installed(server, state_dir, tmp_path) -> None:
    server.files["/evil.onnx"] = b"not the voice you wanted"
    m = manifest(tmp_path, "evil", [{"url": server.url + "/evil.onnx", "path": "evil.onnx",
                                     "sha256": "0" * 64}])
    result = run("fetch", "evil", "--manifest", str(m))
    assert result.exit_code == 1 and "refused" in result.output and "0" * 64 in result.output
    assert not (state_dir / "models" / "evil").exists()
    assert not (state_dir / "models" / ".partial" / "evil" / "evil.onnx").exists()


def test_unpinned_download_needs_consent_and_is_then_pinned(server, state_dir, tmp_path) -> None:
    server.files["/u.bin"] = b"x" * 1000
    m = manifest(tmp_path, "unpinned", [{"url": server.url + "/u.bin", "path": "u.bin", "sha256": ""}])
    refused = run("fetch", "unpinned", "--manifest", str(m))
    assert refused.exit_code == 1 and "--allow-unpinned" in refused.output and sha(b"x" * 1000) in refused.output
    ok = run("fetch", "unpinned", "--manifest", str(m), "--allow-unpinned")
    assert ok.exit_code == 0, ok.output
    local = read_manifest(state_dir / "models" / "manifest.local.toml")
    assert local["unpinned"].files[0].sha256 == sha(b"x" * 1000)


def test_install_a_vosk_model_from_a_zip_on_a_usb_stick(state_dir, tmp_path) -> None:
    stick = tmp_path / "usb" / "vosk-model-operator.zip"
    stick.parent.mkdir()
    with zipfile.ZipFile(stick, "w") as z:
        z.writestr("vosk-model-operator/am/final.mdl", b"acoustic")
        z.writestr("vosk-model-operator/conf/model.conf", b"--sample-frequency=16000\n")
        z.writestr("vosk-model-operator/graph/HCLr.fst", b"graph")
    result = run("install", str(stick), "--name", "vosk-model-small-id")
    assert result.exit_code == 0, result.output
    settings = load_settings()
    path = asr_model_path(settings)
    assert (path / "am" / "final.mdl").read_bytes() == b"acoustic"
    from firmware.voice.asr import find_model_dir

    assert find_model_dir(path) == path
    assert run("verify").exit_code == 0
    (path / "am" / "final.mdl").write_bytes(b"tampered")
    bad = run("verify")
    assert bad.exit_code == 1 and "am/final.mdl" in bad.output
    listing = run("list").output
    assert "vosk-model-small-id" in listing and "installed (install vosk-model-operator.zip)" in listing
    assert "children" in listing.lower()  # the manifest's warning about the only public model


def test_install_a_piper_voice_file_with_its_config(state_dir, tiny_voice, monkeypatch) -> None:
    result = run("install", str(tiny_voice))
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("POSKO_VOICE_TTS_VOICE", "tiny-test-tone")
    voice = tts_voice_path(load_settings())
    assert voice.is_file() and Path(f"{voice}.json").is_file()
    lonely = tiny_voice.parent / "copy.onnx"
    lonely.write_bytes(tiny_voice.read_bytes())
    refused = run("install", str(lonely))
    assert refused.exit_code == 1 and "copy.onnx.json" in refused.output


def test_local_file_with_the_wrong_digest_is_refused(state_dir, tmp_path) -> None:
    f = tmp_path / "voice.onnx"
    f.write_bytes(b"fake")
    (tmp_path / "voice.onnx.json").write_text("{}")
    m = manifest(tmp_path, "voice", [{"url": "", "path": "voice.onnx", "sha256": "1" * 64}])
    result = run("install", str(f), "--manifest", str(m))
    assert result.exit_code == 1 and "does not match" in result.output


def test_shipped_manifest_is_honest_and_bad_manifests_are_named(tmp_path) -> None:
    from models.manifest import SHIPPED

    entries = read_manifest(SHIPPED)
    piper = entries["id_ID-news_tts-medium"]
    assert piper.kind == "tts" and "MODEL_CARD" in piper.licence
    assert [f.path for f in piper.files] == ["id_ID-news_tts-medium.onnx", "id_ID-news_tts-medium.onnx.json"]
    assert "children" in entries["vosk-model-small-id"].note.lower()
    bad = tmp_path / "bad.toml"
    bad.write_text('[[model]]\nname = "x"\nkind = "video"\nlanguage = "id"\nlicence = "l"\n')
    with pytest.raises(ManifestError, match="field 'kind'"):
        read_manifest(bad)


def test_warm_builds_the_cache_for_every_spoken_answer(state_dir, tiny_voice, monkeypatch) -> None:
    monkeypatch.setenv("POSKO_VOICE_TTS_VOICE", str(tiny_voice))
    first = run("warm")
    assert first.exit_code == 0, first.output
    from assistant import load_brain

    total = len([s for _e, _l, s in load_brain().spoken_answers() if s.strip()])
    import re

    made, kept = map(int, re.search(r"(\d+) made, (\d+) already there", first.output).groups())
    assert made > 0 and made + kept == total  # identical spoken answers share one file
    wavs = list((state_dir / "tts-cache").rglob("*.wav"))
    assert len(wavs) == made
    again = run("warm")
    assert " 0 made" in again.output and "already there" in again.output
