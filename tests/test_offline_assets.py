"""Everything the hub, the kiosk and the phone app serve works offline: no page, style sheet
or script loads (or links to) anything outside the machine (no CDN, no web fonts, no links
out of a command center or a kiosk without internet). XML namespace identifiers such as
http://www.w3.org/2000/svg are names, never fetched, and are allowed."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVED = [ROOT / "hub" / "static", ROOT / "hub" / "templates",
          ROOT / "kiosk_ui" / "static", ROOT / "kiosk_ui" / "templates"]
SUFFIXES = {".html", ".js", ".css", ".svg", ".json", ".webmanifest"}
NAMESPACES = ("http://www.w3.org/",)
# What a browser follows or fetches: attributes, CSS url()/@import, and script calls.
REMOTE = re.compile(
    r"""(?:\b(?:src|href|action|poster|data)\s*=\s*\\?["']?\s*"""
    r"""|url\(\s*["']?|@import\s+["']?"""
    r"""|\b(?:fetch|importScripts|EventSource|WebSocket|open)\(\s*["'`])"""
    r"""((?:https?:|wss?:)?//[^"'`)\s>]+)""", re.I)


def remote_references(folders=SERVED) -> list[str]:
    found = []
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.suffix not in SUFFIXES:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            for match in REMOTE.finditer(text):
                url = match.group(1)
                if not url.startswith(NAMESPACES):
                    found.append(f"{path.relative_to(folder.parent)}: {url}")
    return found


def test_nothing_served_points_outside_the_machine() -> None:
    assert remote_references() == []


def test_the_check_finds_remote_assets(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text(
        '<link href="https://cdn.example/x.css"><svg xmlns="http://www.w3.org/2000/svg"></svg>'
        '<script src="//cdn.example/x.js"></script><a href="/laporan">ok</a>')
    (tmp_path / "a.js").write_text('x.innerHTML = \'<a href="https://leafletjs.com">L</a>\'; fetch("https://api.example/")')
    (tmp_path / "s.css").write_text("@import url('https://fonts.example/f.css'); .a{background:url(img/x.png)}")
    found = remote_references([tmp_path])
    assert len(found) == 5, found
    assert not any("w3.org" in f or "/laporan" in f or "img/x.png" in f for f in found)
