"""A new knowledge base or voice rebuilds the speech cache while the old one keeps serving."""

from __future__ import annotations

from firmware.voice.cache import SpeechCache

SPOKEN = [("e1", "id", "Biaya SKCK tiga puluh ribu rupiah."), ("e2", "id", "Hubungi satu satu nol.")]


def test_the_old_generation_answers_until_the_new_one_is_warm(tiny_synth, tmp_path) -> None:
    old = SpeechCache(tmp_path, "kb-1", tiny_synth.voice_id)
    assert old.warm(SPOKEN, tiny_synth)["made"] == 2
    new = SpeechCache(tmp_path, "kb-2", tiny_synth.voice_id)  # a new KB arrived
    assert new.get(SPOKEN[0][2]) is None  # nothing of its own yet
    assert new.adopt_previous().generation == old.generation
    served = new.get(SPOKEN[0][2])
    assert served is not None and served.pcm == old.get(SPOKEN[0][2]).pcm
    assert new.previous_hits == 1 and new.get("Kalimat yang tidak ada.") is None
    counts = new.warm(SPOKEN, tiny_synth)  # the background rebuild finishes
    assert counts["made"] == 2 and counts["pruned_generations"] == 1
    assert new.previous is None and not old.dir.exists()
    assert new.get(SPOKEN[1][2]) is not None and new.hits == 1


def test_a_changed_voice_is_a_new_generation_and_nothing_to_adopt_on_a_fresh_unit(tiny_synth, tmp_path) -> None:
    fresh = SpeechCache(tmp_path, "kb-1", tiny_synth.voice_id)
    assert fresh.adopt_previous() is None
    fresh.warm(SPOKEN[:1], tiny_synth)
    other_voice = SpeechCache(tmp_path, "kb-1", "piper:another-voice:0123456789abcdef")
    assert other_voice.generation != fresh.generation
    assert other_voice.adopt_previous().voice_id == tiny_synth.voice_id
