"""Measurements of kiosk screens in the real browser: text contrast (WCAG AA) and layout."""

from __future__ import annotations

# Every visible text node's colour against the background it is drawn on (each ancestor's
# background colour composited up to the first opaque one), as WCAG 2.1 defines contrast.
CONTRAST = """() => {
  const parse = c => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return [0,0,0,0];
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const over = (top, under) => { const a = top[3] + under[3] * (1 - top[3]);
    if (a === 0) return [0,0,0,0];
    return [0,1,2].map(i => (top[i]*top[3] + under[i]*under[3]*(1-top[3])) / a).concat([a]); };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v/12.92 : Math.pow((v+0.055)/1.055, 2.4); };
    return 0.2126*f(c[0]) + 0.7152*f(c[1]) + 0.0722*f(c[2]); };
  const background = el => { let layers = [];
    for (let e = el; e; e = e.parentElement) { const b = parse(getComputedStyle(e).backgroundColor);
      if (b[3] > 0) { layers.push(b); if (b[3] >= 1) break; } }
    let c = [255,255,255,1]; for (let i = layers.length - 1; i >= 0; i--) c = over(layers[i], c); return c; };
  const visible = el => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'
      && r.bottom > 0 && r.top < innerHeight; };
  const bad = [];
  let checked = 0;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode; if (!node.textContent.trim()) continue;
    const el = node.parentElement; if (!el || !visible(el) || el.closest('svg, script, style')) continue;
    const s = getComputedStyle(el);
    const bg = background(el); const fg = over(parse(s.color), bg);
    const l1 = lum(fg), l2 = lum(bg); const ratio = (Math.max(l1,l2)+0.05)/(Math.min(l1,l2)+0.05);
    const size = parseFloat(s.fontSize); const bold = parseInt(s.fontWeight, 10) >= 700;
    const need = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
    checked++;
    if (ratio < need) bad.push(`${el.tagName}.${el.className} "${node.textContent.trim().slice(0,40)}" ${ratio.toFixed(2)}:1 < ${need} (${s.color} on rgb(${bg.slice(0,3).map(Math.round)}))`);
  }
  return {checked, bad};
}"""


def assert_contrast(page, name: str) -> int:
    """Every visible text on the screen meets WCAG AA; returns how many texts were checked."""
    m = page.evaluate(CONTRAST)
    assert not m["bad"], f"{name}: text below WCAG AA contrast: {m['bad']}"
    assert m["checked"] > 0, f"{name}: no text measured"
    return m["checked"]


def field_and_keyboard(page, selector: str) -> dict:
    """Bounding boxes of a field, the on-screen keyboard and the top bar."""
    return page.evaluate("""sel => {
      const box = e => { const r = e.getBoundingClientRect(); return {top: r.top, bottom: r.bottom}; };
      return {field: box(document.querySelector(sel)), osk: box(document.getElementById('osk')),
              bar: box(document.querySelector('.topbar')), active: document.activeElement.matches(sel)};
    }""", selector)
