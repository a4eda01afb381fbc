"""The knowledge-base validator: good entries load, each kind of bad entry is refused by name."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from assistant.errors import KbError
from assistant.kb import SHIPPED_KB, TOPICS, load_kb, main

FIXTURE_KB = Path(__file__).parent / "fixtures" / "kb"


@pytest.fixture
def kb_copy(tmp_path: Path) -> Path:
    target = tmp_path / "kb"
    shutil.copytree(FIXTURE_KB, target)
    return target


def _edit(kb_dir: Path, rel: str, change) -> Path:
    path = kb_dir / rel
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _problems(kb_dir: Path) -> list[str]:
    with pytest.raises(KbError) as info:
        load_kb(kb_dir)
    return info.value.problems


def test_fixture_kb_loads_with_every_field() -> None:
    kb = load_kb(FIXTURE_KB)
    entry = kb.get("skck-biaya")
    assert entry is not None
    assert entry.topic == "skck"
    assert entry.title == {"id": "Biaya SKCK", "en": "SKCK fee"}
    assert len(entry.questions) >= 8
    assert "Rp30.000" in entry.answer["id"]
    assert entry.sources and entry.checked.year == 2026
    assert entry.featured is True and entry.related == ("skck-syarat",)
    assert kb.get("nope") is None
    assert set(kb.entries) >= {"skck-biaya", "darurat-nomor", "sapaan-halo"}


def test_version_is_a_content_hash(kb_copy: Path) -> None:
    before = load_kb(kb_copy).version
    assert len(before) == 64 and int(before, 16) >= 0
    assert load_kb(kb_copy).version == before
    _edit(kb_copy, "skck/skck-syarat.yaml", lambda d: d["questions"].append("syarat skck 2026"))
    assert load_kb(kb_copy).version != before


@pytest.mark.parametrize(
    ("rel", "change", "expected"),
    [
        ("skck/skck-biaya.yaml", lambda d: d.pop("sources"), "skck-biaya.yaml: sources: is required"),
        ("skck/skck-biaya.yaml", lambda d: d.update(sources=[]), "skck-biaya.yaml: sources: is required"),
        ("skck/skck-biaya.yaml", lambda d: d.update(sources=[""]), "skck-biaya.yaml: sources: must be"),
        ("skck/skck-biaya.yaml", lambda d: d.update(questions=d["questions"][:7]),
         "skck-biaya.yaml: questions: has 7 questions, at least 8"),
        ("skck/skck-biaya.yaml", lambda d: d["speech"].update(id=" ".join(["kata"] * 26)),
         "skck-biaya.yaml: speech.id: has 26 words, at most 25"),
        ("skck/skck-biaya.yaml", lambda d: d["speech"].update(en="**Rp30.000** fee"),
         "speech.en: must be plain sentences"),
        ("skck/skck-biaya.yaml", lambda d: d.update(id="SKCK_Biaya"),
         "skck-biaya.yaml: id: 'SKCK_Biaya' must be lowercase"),
        ("skck/skck-biaya.yaml", lambda d: d.update(id="skck-harga"),
         "id: 'skck-harga' does not match the file name 'skck-biaya.yaml'"),
        ("skck/skck-biaya.yaml", lambda d: d.update(topic="gosip"), "topic: unknown topic 'gosip'"),
        ("skck/skck-biaya.yaml", lambda d: d.update(topic="sim"), "topic: 'sim' but the file is in folder 'skck'"),
        ("skck/skck-biaya.yaml", lambda d: d["answer"].pop("en"), "skck-biaya.yaml: answer.en: is required"),
        ("skck/skck-biaya.yaml", lambda d: d["answer"].pop("id"), "skck-biaya.yaml: answer.id: is required"),
        ("skck/skck-biaya.yaml", lambda d: d.pop("speech"), "skck-biaya.yaml: speech: is required"),
        ("skck/skck-biaya.yaml", lambda d: d.update(checked="kemarin"), "checked: must be a date"),
        ("skck/skck-biaya.yaml", lambda d: d.update(related=["tidak-ada"]), "related: unknown entry id 'tidak-ada'"),
        ("skck/skck-biaya.yaml", lambda d: d.update(answr="typo"), "answr: unknown field"),
        ("skck/skck-biaya.yaml", lambda d: d["answer"].update(id="Telepon 117 saja."),
         "answer.id: quotes 117 or 129"),
        ("skck/skck-biaya.yaml", lambda d: d.update(questions="berapa"), "questions: must be a list"),
        ("skck/skck-biaya.yaml", lambda d: d["questions"].append(d["questions"][0].upper()),
         "questions: repeated question"),
    ],
)
def test_bad_entry_is_refused_naming_file_and_field(kb_copy: Path, rel, change, expected) -> None:
    _edit(kb_copy, rel, change)
    problems = _problems(kb_copy)
    assert any(expected in p for p in problems), problems


def test_duplicate_id_in_two_files_is_refused(kb_copy: Path) -> None:
    (kb_copy / "skck" / "extra").mkdir()
    shutil.copy(kb_copy / "skck" / "skck-biaya.yaml", kb_copy / "skck" / "extra" / "skck-biaya.yaml")
    problems = _problems(kb_copy)
    assert any("duplicate id 'skck-biaya'" in p for p in problems), problems


def test_every_problem_is_reported_at_once(kb_copy: Path) -> None:
    _edit(kb_copy, "skck/skck-biaya.yaml", lambda d: d.pop("sources"))
    _edit(kb_copy, "sim/sim-perpanjang.yaml", lambda d: d.update(questions=d["questions"][:3]))
    problems = _problems(kb_copy)
    assert len(problems) == 2
    assert "skck/skck-biaya.yaml" in problems[1] or "skck/skck-biaya.yaml" in problems[0]


def test_broken_yaml_and_empty_folder_are_refused(tmp_path: Path, kb_copy: Path) -> None:
    (kb_copy / "sapaan" / "rusak.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    assert any("rusak.yaml: not valid UTF-8 YAML" in p for p in _problems(kb_copy))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert any("no *.yaml entries" in p for p in _problems(empty))
    assert any("does not exist" in p for p in _problems(tmp_path / "missing"))


def test_module_main_prints_summary_or_problems(kb_copy: Path, capsys) -> None:
    assert main([str(FIXTURE_KB)]) == 0
    assert "8 entries" in capsys.readouterr().out
    _edit(kb_copy, "skck/skck-biaya.yaml", lambda d: d.pop("sources"))
    assert main([str(kb_copy)]) == 1
    assert "sources: is required" in capsys.readouterr().err


def test_shipped_kb_is_valid() -> None:
    """Runs the validator over the whole knowledge base that ships with Posko."""
    kb = load_kb(SHIPPED_KB)
    assert {e.topic for e in kb.entries.values()} <= set(TOPICS)
    assert kb.get("darurat-nomor") is not None, "the kiosk's emergency screen shows darurat-nomor"


def test_shipped_kb_has_at_least_80_entries() -> None:
    kb = load_kb(SHIPPED_KB)
    assert len(kb) >= 80, f"the shipped KB has {len(kb)} entries; the issue asks for at least 80"


def test_shipped_kb_covers_every_topic() -> None:
    kb = load_kb(SHIPPED_KB)
    missing = set(TOPICS) - set(kb.by_topic())
    assert not missing, f"no entries for topics {sorted(missing)}"
