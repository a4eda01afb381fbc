"""Scan as numbers: the policy, and the multi-group receive side fed with real Opus frames
at chosen times (no broker, no clock). Plus the `ptt.scan` setting's checks."""

from __future__ import annotations

import numpy as np
import pytest

from gateway import tones
from gateway.messages import FloorState
from gateway.packet import Frame
from gateway.receiver import Played
from gateway.scan import AnnouncementPlayed, Scanner, ScanPolicy, ScanSwitched, order
from posko.config import ConfigError, load_settings
from tests.gateway.test_receiver import speech

# --- the policy -------------------------------------------------------------------------

def test_order_puts_the_selected_group_first_unless_listed() -> None:
    assert order("a", ["b", "c"]) == ("a", "b", "c")
    assert order("b", ["a", "b", "c"]) == ("a", "b", "c")
    assert order("a", []) == ("a",)


def test_policy_hears_the_highest_live_group_and_emergency_first() -> None:
    p = ScanPolicy(("hi", "mid", "lo"))
    assert p.choose({}) is None
    assert p.choose({"lo": False}) == "lo"
    assert p.choose({"lo": False, "mid": False}) == "mid"
    assert p.choose({"lo": False, "hi": False, "mid": False}) == "hi"
    assert p.choose({"lo": True, "hi": False}) == "lo"  # an emergency spurt comes first
    assert p.choose({"lo": True, "mid": True}) == "mid"  # two emergencies: the order decides
    assert p.choose({"other": False}) is None


def test_policy_reports_preemption_and_resumption() -> None:
    p = ScanPolicy(("hi", "lo"))
    assert p.update({"lo": False}) == _switch(None, "lo", "start")
    assert p.update({"lo": False}) is None
    assert p.update({"lo": False, "hi": False}) == _switch("lo", "hi", "preempt")
    assert p.update({"lo": False}) == _switch("hi", "lo", "resume")
    assert p.update({}) == _switch("lo", None, "end")


def _switch(before, after, why):
    from gateway.scan import Switch

    return Switch(before, after, why)


# --- the receive side with frames -------------------------------------------------------

def tone_packets(n: int, freq: float) -> list[bytes]:
    return speech(n, freq)


LO_HZ, HI_HZ = 250.0, 2200.0  # apart from every signalling tone (425-1600 Hz)
LO, HI = tone_packets(100, LO_HZ), tone_packets(30, HI_HZ)


def spurt_frames(packets: list[bytes], spurt: int) -> list[Frame]:
    out = [Frame(seq=i, timestamp=i * 320, spurt=spurt, payload=p, start=i == 0)
           for i, p in enumerate(packets)]
    out.append(Frame(seq=len(packets), timestamp=len(packets) * 320, spurt=spurt, end=True))
    return out


def grant(sc: Scanner, group: str, holder: str, spurt: int, priority: str = "normal") -> None:
    sc.floor(FloorState(group=group, holder=holder, spurt=spurt, priority=priority, event="grant",
                        event_unit=holder, event_spurt=spurt))


def free(sc: Scanner, group: str) -> None:
    sc.floor(FloorState(group=group, holder="", spurt=0, event="release"))


def dominant_hz(pcm: bytes) -> float:
    x = np.frombuffer(pcm, "<i2").astype(float)
    if np.abs(x).max() < 500:
        return 0.0
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * 16000 / len(x))


def classify(pcm: bytes) -> str:
    hz = dominant_hz(pcm)
    if hz == 0.0:
        return "."
    if abs(hz - LO_HZ) < 60:
        return "L"
    if abs(hz - HI_HZ) < 100:
        return "H"
    return "t"  # a tone


def run(sc: Scanner, arrivals: dict[int, list[tuple[str, str, Frame]]], until_ms: int,
        on_tick=None):
    """Push frames at their arrival times (ms), pull every 20 ms: [(t, Output)]."""
    outs = []
    for t in range(until_ms):
        for group, unit, f in arrivals.get(t, []):
            sc.push(group, unit, f, t)
        if on_tick is not None:
            on_tick(t)
        if t % 20 == 0:
            outs.append((t, sc.pull(t)))
    return outs


def scanner(groups=("hi", "lo")) -> Scanner:
    sc = Scanner("me", groups)
    sc.arbiter(True)
    return sc


def test_a_higher_group_preempts_within_100_ms_and_the_lower_resumes() -> None:
    sc = scanner()
    grant(sc, "lo", "lo-talker", 1)
    arrivals: dict[int, list] = {}
    for i, f in enumerate(spurt_frames(LO, 1)):  # lo: 2 s of 250 Hz from t=0
        arrivals.setdefault(i * 20, []).append(("lo", "lo-talker", f))
    hi_first = 600
    for i, f in enumerate(spurt_frames(HI, 2)):  # hi: 0.6 s of 2200 Hz from t=600
        arrivals.setdefault(hi_first + i * 20 + 3, []).append(("hi", "hi-talker", f))

    def floors(t: int) -> None:
        if t == hi_first:
            grant(sc, "hi", "hi-talker", 2)
        if t == hi_first + 700:
            free(sc, "hi")

    outs = run(sc, arrivals, 2600, floors)
    heard = "".join(classify(o.pcm) for _, o in outs)
    times = [t for t, _ in outs]
    first_h = heard.index("H")
    assert times[first_h] - (hi_first + 3) <= 100  # pre-empted within 100 ms of the first frame
    last_l_before = heard.rindex("L", 0, first_h)
    assert times[last_l_before] <= hi_first + 3 + 20  # the lower stopped at the next frame
    last_h = heard.rindex("H")
    assert "L" not in heard[first_h:last_h]  # nothing of the lower while the higher talks
    assert heard[first_h:last_h + 1].count("H") >= len(HI) - 2
    resumed = heard.index("L", last_h)
    assert heard[last_h + 1:resumed].count("t") >= 3  # the higher's roger beep, then back
    assert times[resumed] - times[last_h] <= 200
    # Live, not delayed: the lower comes back where its talker is now (frames in between
    # were decoded but not heard), and its spurt ends on time.
    assert times[heard.rindex("L")] <= 2000 + 200
    switches = [e for _, o in outs for e in o.events if isinstance(e, ScanSwitched)]
    assert [(s.why, s.after) for s in switches] == [
        ("start", "lo"), ("preempt", "hi"), ("resume", "lo"), ("end", None)]
    played_groups = {e.group for _, o in outs for e in o.events if isinstance(e, Played)}
    assert played_groups == {"hi", "lo"}
    muted_lo = [e for t, o in outs for e in o.events
                if isinstance(e, Played) and e.group == "lo" and times[first_h] <= t <= times[last_h]]
    assert muted_lo == []  # a frame not heard is not reported as played (--record, the hooks)


def test_a_lower_group_never_preempts_a_higher_one() -> None:
    sc = scanner()
    grant(sc, "hi", "hi-talker", 2)
    arrivals: dict[int, list] = {}
    for i, f in enumerate(spurt_frames(HI, 2)):
        arrivals.setdefault(i * 20, []).append(("hi", "hi-talker", f))
    for i, f in enumerate(spurt_frames(LO[:10], 1)):
        arrivals.setdefault(100 + i * 20 + 5, []).append(("lo", "lo-talker", f))
    outs = run(sc, arrivals, 900, lambda t: grant(sc, "lo", "lo-talker", 1) if t == 100 else None)
    heard = "".join(classify(o.pcm) for _, o in outs)
    assert "L" not in heard  # the short lower spurt ended while the higher one talked
    assert heard.count("H") >= len(HI) - 2


def test_an_emergency_spurt_in_a_lower_group_preempts_a_normal_higher_one() -> None:
    sc = scanner()
    grant(sc, "hi", "hi-talker", 2)
    arrivals: dict[int, list] = {}
    for i, f in enumerate(spurt_frames(HI, 2)):
        arrivals.setdefault(i * 20, []).append(("hi", "hi-talker", f))
    for i, f in enumerate(spurt_frames(LO[:10], 1)):
        arrivals.setdefault(200 + i * 20 + 5, []).append(("lo", "lo-talker", f))
    outs = run(sc, arrivals, 900,
               lambda t: grant(sc, "lo", "lo-talker", 1, "emergency") if t == 200 else None)
    heard = "".join(classify(o.pcm) for _, o in outs)
    first_l = heard.index("L")
    assert outs[first_l][0] - 205 <= 100
    assert "H" not in heard[first_l:heard.rindex("L")]


def test_own_tones_come_first_and_a_group_alone_is_the_old_receiver() -> None:
    from gateway.receiver import Receiver

    sc = scanner(("only",))
    rx = Receiver("me", group="only")
    rx.arbiter(True)
    for r in (sc, rx):
        r.floor(FloorState(group="only", holder="t", spurt=1, event="grant", event_unit="t",
                           event_spurt=1))
    arrivals = {i * 20: [("only", "t", f)] for i, f in enumerate(spurt_frames(LO[:20], 1))}
    got, want = [], []
    for t in range(1400):
        for _, unit, f in arrivals.get(t, []):
            sc.push("only", unit, f, t)
            rx.push(unit, f, t)
        if t == 100:
            sc.queue_tone(tones.busy())
            rx.queue_tone(tones.busy())
        if t % 20 == 0:
            got.append(sc.pull(t).pcm)
            want.append(rx.pull(t).pcm)
    heard = "".join(classify(p) for p in got)
    assert heard.index("L") < heard.index("t")  # the busy tone cut into the audio
    assert got == want  # one group: exactly what the one-group receiver played


def test_frames_of_groups_not_heard_are_refused() -> None:
    sc = scanner()
    assert sc.push("elsewhere", "x", spurt_frames(LO[:1], 1)[0], 0) is None
    assert sc.floor(FloorState(group="elsewhere", holder="x", spurt=1)) is False
    sc.set_groups(("lo",))
    assert sc.groups == ("lo",) and sc.receiver("hi") is None


# --- announcements in the receive side ----------------------------------------------------

SPEECH = b"".join(np.full(320, v, "<i2").tobytes() for v in ([6000, -6000] * 25))  # 1 s, not a tone


def test_an_announcement_waits_for_the_floor_plays_after_its_tone_and_a_spurt_cuts_it() -> None:
    sc = scanner()
    grant(sc, "lo", "lo-talker", 1)
    arrivals = {i * 20: [("lo", "lo-talker", f)] for i, f in enumerate(spurt_frames(LO[:25], 1))}
    sc.queue_announcement("k", "lo", SPEECH, expires_ms=60_000)

    def floors(t: int) -> None:
        if t == 520:
            free(sc, "lo")
    outs = run(sc, arrivals, 700, floors)
    events = [(t, e) for t, o in outs for e in o.events if isinstance(e, AnnouncementPlayed)]
    started = [t for t, e in events if e.what == "started"]
    assert started and started[0] > 500  # only after the spurt (and its roger) and the release
    alert = tones.alert()
    first = next(o.pcm for t, o in outs if t == started[0])
    assert first == alert[:640]  # the alert tone first
    # A spurt cuts it: it starts again from the tone once the floor is free.
    grant(sc, "hi", "hi-talker", 2)
    base = 700
    more = {base + i * 20: [("hi", "hi-talker", f)] for i, f in enumerate(spurt_frames(HI[:10], 2))}
    outs2 = run_from(sc, more, base, base + 600, lambda t: free(sc, "hi") if t == base + 260 else None)
    kinds = [e.what for _, o in outs2 for e in o.events if isinstance(e, AnnouncementPlayed)]
    assert kinds[0] == "cut"
    heard = "".join(classify(o.pcm) for _, o in outs2)
    assert "H" in heard
    outs3 = run_from(sc, {}, base + 600, base + 600 + 2500)
    kinds += [e.what for _, o in outs3 for e in o.events if isinstance(e, AnnouncementPlayed)]
    assert kinds == ["cut", "started", "done"]
    assert sc.announcements_waiting == 0


def run_from(sc, arrivals, start, end, on_tick=None):
    outs = []
    for t in range(start, end):
        for group, unit, f in arrivals.get(t, []):
            sc.push(group, unit, f, t)
        if on_tick is not None:
            on_tick(t)
        if t % 20 == 0:
            outs.append((t, sc.pull(t)))
    return outs


def test_an_announcement_waits_while_the_unit_talks_and_expires() -> None:
    sc = scanner()
    sc.queue_announcement("k", "hi", SPEECH, expires_ms=400)
    outs = [sc.pull(t, muted=True) for t in range(0, 600, 20)]
    assert all(not any(o.pcm) for o in outs)
    assert [e.what for o in outs for e in o.events if isinstance(e, AnnouncementPlayed)] == ["expired"]
    assert sc.idle


# --- the setting ----------------------------------------------------------------------------

def test_scan_setting_is_checked_and_names_the_key(tmp_path) -> None:
    env = {"POSKO_PTT_GROUPS": "a,b,c,d,e"}
    ok = load_settings(environ={**env, "POSKO_PTT_SCAN": "b,a"})
    assert ok.ptt.scan == ["b", "a"]
    with pytest.raises(ConfigError, match=r"^environment: POSKO_PTT_SCAN: at most 4 talk groups, found 5"):
        load_settings(environ={**env, "POSKO_PTT_SCAN": "a,b,c,d,e"})
    with pytest.raises(ConfigError, match=r"POSKO_PTT_SCAN: talk group 'a' is listed twice"):
        load_settings(environ={**env, "POSKO_PTT_SCAN": "a,b,a"})
    toml = tmp_path / "posko.toml"
    toml.write_text('[ptt]\ngroups = ["a", "b"]\nscan = ["a", "zz"]\n')
    with pytest.raises(ConfigError, match=r"posko.toml: \[ptt\] scan: talk group 'zz' is not one of"):
        load_settings(toml, environ={})
    toml.write_text('[ptt]\nscan = ["a/b"]\n')
    with pytest.raises(ConfigError, match=r"\[ptt\] scan: group id must be"):
        load_settings(toml, environ={})


def test_an_emergency_spurt_cuts_an_announcement_at_once() -> None:
    sc = scanner()
    sc.queue_announcement("k", "hi", SPEECH, expires_ms=60_000)
    outs = run_from(sc, {}, 0, 400)
    assert [e.what for _, o in outs for e in o.events if isinstance(e, AnnouncementPlayed)] == ["started"]
    grant(sc, "lo", "caller", 9, "emergency")
    arrivals = {400 + i * 20 + 2: [("lo", "caller", f)] for i, f in enumerate(spurt_frames(LO[:20], 9))}
    outs = run_from(sc, arrivals, 400, 900)
    cut_at = next(t for t, o in outs for e in o.events if isinstance(e, AnnouncementPlayed))
    assert cut_at <= 420  # the frame after the emergency's first frame arrived
    heard = "".join(classify(o.pcm) for t, o in outs if t > cut_at)
    assert heard.count("L") >= 18 and heard.index("L") <= 5
