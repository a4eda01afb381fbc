"""`posko ask`: the assistant from the command line.

    posko ask "pertanyaan"       the answer for a person
    posko ask --json             one question per stdin line -> one JSON object per line
    posko ask --report           the most frequent unanswered questions
    posko ask --lang en ...      answer in English

The `--json` contract is used by tooling outside Posko; keep it stable: each output line has
at least action, text, speech, entry, confidence (and suggestions, sources, category, lang).
"""

from __future__ import annotations

import json
import re
import sys

import click

from assistant.brain import ALARM_HEAD, WARY_HEAD, Brain, Reply, load_brain
from assistant.data import load_data
from assistant.unanswered import UnansweredLog, attach_log
from posko.config import load_settings
from posko.kb_paths import active_kb_dir

_BOLD = re.compile(r"\*\*(.+?)\*\*")


def _open(kb_dir: str | None, log: bool) -> tuple[Brain, UnansweredLog]:
    settings = load_settings()
    conf = settings.assistant
    # --kb, else [assistant] kb_dir, else the bundle fetched from the hub, else the shipped KB.
    kb = kb_dir or active_kb_dir(settings)
    # A KB other than the shipped one needs its own intent model: trained once, kept here
    # (the same folder the unit's voice and kiosk use), so the next `posko ask` is quick.
    brain = load_brain(kb, min_confidence=conf.min_confidence,
                       cache_dir=settings.state_dir / "assistant" / "models")
    unanswered = attach_log(brain, settings)
    if not log:
        brain.on_unanswered = None
    return brain, unanswered


def _for_a_person(reply: Reply, labels: dict) -> str:
    text = _BOLD.sub(r"\1", reply.text.strip())
    if reply.action == "answer" and reply.sources:
        text += f"\n\n{labels['sources'][reply.lang]}\n" + "\n".join(f"- {s}" for s in reply.sources)
    return text


def _parse_line(line: str, default_lang: str) -> tuple[str, str]:
    """A plain question, or a JSON object {"q": ..., "lang": ...} for per-line language."""
    stripped = line.strip()
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError:
            return stripped, default_lang
        if isinstance(obj, dict):
            question = obj.get("q", obj.get("question", ""))
            return str(question or ""), str(obj.get("lang") or default_lang)
    return stripped, default_lang


@click.command("ask")
@click.argument("question", nargs=-1)
@click.option("--json", "as_json", is_flag=True,
              help="Read one question per line on stdin; write one JSON object per line.")
@click.option("--report", is_flag=True, help="List the most frequent unanswered questions.")
@click.option("--lang", type=click.Choice(["id", "en"]), default="id", show_default=True,
              help="Language of the answer.")
@click.option("--kb", "kb_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="Knowledge-base folder (default: the configured or shipped one).")
@click.option("--no-log", is_flag=True, help="Do not log fallback questions.")
@click.option("--explain", is_flag=True,
              help="Show how the question was understood (normalised form, rules, scores).")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True,
              help="Lines of --report.")
def ask(question: tuple[str, ...], as_json: bool, report: bool, lang: str, kb_dir: str | None,
        no_log: bool, explain: bool, limit: int) -> None:
    """Ask the assistant (Tanya Pak Polisi) a question."""
    brain, unanswered = _open(kb_dir, log=not (no_log or explain))
    if report:
        rows = unanswered.report(limit)
        if not rows:
            click.echo("Belum ada pertanyaan yang tidak terjawab. / No unanswered questions yet.")
            return
        click.echo(f"{'jumlah':>6}  pertanyaan  (topik terdekat)")
        for row in rows:
            guess = f"  ({row.best_guess})" if row.best_guess else ""
            click.echo(f"{row.count:>6}  {row.question}{guess}")
        return
    if as_json:
        out = sys.stdout
        for line in sys.stdin:
            text, line_lang = _parse_line(line, lang)
            reply = brain.ask(text, line_lang)
            out.write(json.dumps(reply.to_dict(), ensure_ascii=False) + "\n")
            out.flush()
        return
    if not question:
        raise click.UsageError('give a question, e.g. posko ask "syarat skck", or use --json')
    if explain:
        why = brain.explain(" ".join(question))
        click.echo(f"normalised:  {why['normalised']}")
        click.echo(f"retrieval:   {' '.join(why['retrieval_words'])}")
        click.echo(f"emergency:   {why['emergency'] or '-'}")
        click.echo(f"refusal:     {why['refusal'] or '-'}")
        heads = ", ".join(f"{name} {value:+.2f}" for name, value in why["heads"].items()
                          if value is not None)
        click.echo(f"heads:       {heads or '-'} (alarm escalates from {ALARM_HEAD}, "
                   f"wary refuses from {WARY_HEAD})")
        click.echo(f"decision:    {why['decision']} (answer needs score >= {why['threshold']})")
        for hit in why["hits"]:
            click.echo(f"  {hit['score']:.3f}  {hit['id']:32} {hit['matched']}")
        return
    reply = brain.ask(" ".join(question), lang)
    click.echo(_for_a_person(reply, load_data("replies")["labels"]))
