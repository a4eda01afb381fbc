"""What every kiosk screen must satisfy, measured in the real browser."""

from __future__ import annotations

import time
from pathlib import Path

MEASURE = """() => {
  const visible = el => {
    const r = el.getBoundingClientRect();
    const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none';
  };
  const small_targets = [];
  for (const el of document.querySelectorAll('a, button, input, textarea, label.check')) {
    if (!visible(el)) continue;
    if (el.type === 'checkbox') continue;  // its label is the target (checked as label.check)
    const r = el.getBoundingClientRect();
    if (r.width < 48 || r.height < 48) small_targets.push(`${el.tagName}#${el.id}.${el.className} ${Math.round(r.width)}x${Math.round(r.height)} "${(el.textContent||'').trim().slice(0,30)}"`);
  }
  const small_text = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.textContent.trim()) continue;
    const el = node.parentElement;
    if (!el || !visible(el) || el.closest('svg, script, style')) continue;
    const size = parseFloat(getComputedStyle(el).fontSize);
    if (size < 18) small_text.push(`${el.tagName}.${el.className} ${size}px "${node.textContent.trim().slice(0,30)}"`);
  }
  return {scroll_width: document.documentElement.scrollWidth, inner_width: window.innerWidth,
          small_targets, small_text};
}"""


def check_screen(page, artifacts: Path, name: str, *, allowed_console: tuple[str, ...] = ()) -> None:
    """Screenshot the screen and assert: no horizontal overflow, targets >= 48 px,
    text >= 18 px, no console errors (except the listed expected substrings)."""
    size = page.viewport_size
    page.screenshot(path=str(artifacts / f"kiosk-{name}-{size['width']}x{size['height']}.png"))
    m = page.evaluate(MEASURE)
    assert m["scroll_width"] <= m["inner_width"], f"{name}: horizontal overflow {m}"
    assert not m["small_targets"], f"{name}: touch targets under 48 px: {m['small_targets']}"
    assert not m["small_text"], f"{name}: text under 18 px: {m['small_text']}"
    errors = [e for e in page.console_errors if not any(a in e for a in allowed_console)]
    assert not errors, f"{name}: console errors: {errors}"


def wait_js(page, expression: str, timeout: float = 5000) -> None:
    """Wait until a JS expression is truthy (timeout in ms, like Playwright).

    page.evaluate runs through the DevTools protocol, which the kiosk's strict
    Content-Security-Policy allows; page.wait_for_function evaluates a string inside the
    page, which that policy (rightly) refuses."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(f"() => !!({expression})"):
        assert time.monotonic() < deadline, f"not reached within {timeout} ms: {expression}"
        page.wait_for_timeout(50)
