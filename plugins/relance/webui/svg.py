"""Small server-side SVG charts (no JavaScript, no CDN): horizontal bars, stacked columns,
threshold columns and interval ("forest") plots. Every label is escaped; every drawn number
is also written as text next to its mark, so the page reads without the picture."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

PALETTE = ("#2b6cb0", "#38a169", "#d69e2e", "#805ad5", "#e53e3e", "#319795", "#dd6b20", "#718096",
           "#b83280", "#2c7a7b", "#975a16", "#4a5568", "#a0aec0")
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" {FONT}>'
            f"<title>{escape(title)}</title>{''.join(body)}</svg>")


def hbars(title: str, rows: Sequence[tuple[str, float, str]], width: int = 460, color: str = PALETTE[0]) -> str:
    """One horizontal bar per (label, share in [0, 1], text written after the bar)."""
    label_w, bar_w, row_h = 90, width - 90 - 150, 22
    body = []
    for i, (label, share, text) in enumerate(rows):
        y = 4 + i * row_h
        w = max(0.0, min(1.0, share)) * bar_w
        body.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{escape(label)}</text>'
                    f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 6}" fill="{color}" rx="2"/>'
                    f'<text x="{label_w + w + 6:.1f}" y="{y + 14}">{escape(text)}</text>')
    return _svg(width, 8 + row_h * len(rows), body, title)


def stacked_columns(title: str, categories: Sequence[str], series: Sequence[tuple[str, Sequence[float]]],
                    width: int = 760, height: int = 240) -> str:
    """Stacked columns: one per category (x), one segment per series; a legend underneath."""
    left, right, top, bottom = 50, 10, 16, 40  # top: room for the tallest column's total
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values[i] for _, values in series) for i in range(len(categories))]
    peak = max(totals, default=0) or 1
    slot = plot_w / max(1, len(categories))
    col_w = min(60.0, slot * 0.7)
    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#999"/>',
            f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>']
    for i, category in enumerate(categories):
        x = left + i * slot + (slot - col_w) / 2
        y = top + plot_h
        for s, (_, values) in enumerate(series):
            h = values[i] / peak * plot_h
            if h > 0:
                y -= h
                body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{col_w:.1f}" height="{h:.1f}" '
                            f'fill="{PALETTE[s % len(PALETTE)]}"/>')
        body.append(f'<text x="{x + col_w / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle">{totals[i]:g}</text>'
                    f'<text x="{x + col_w / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle">'
                    f"{escape(category)}</text>")
    x, row = left, 0
    for s, (name, _) in enumerate(series):
        if x > left and x + 14 + 7 * len(name) > width - right:  # the legend wraps: no name cut off
            x, row = left, row + 1
        y = height + 16 * row
        body.append(f'<rect x="{x}" y="{y - 14}" width="10" height="10" fill="{PALETTE[s % len(PALETTE)]}"/>'
                    f'<text x="{x + 14}" y="{y - 5}">{escape(name)}</text>')
        x += 22 + 7 * len(name)
    return _svg(width, height + 16 * row, body, title)


def threshold_columns(title: str, categories: Sequence[str], rates: Sequence[float | None], threshold: float,
                      width: int = 370, height: int = 200) -> str:
    """A rate per category as a column, the threshold as a dashed red line; columns above it
    are red. Percentages written above the columns."""
    left, right, top, bottom = 50, 10, 16, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([threshold * 1.5, *(r for r in rates if r is not None)]) or 1
    slot = plot_w / max(1, len(categories))
    col_w = min(50.0, slot * 0.6)
    ty = top + plot_h - threshold / peak * plot_h
    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#999"/>',
            f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>']
    for i, (category, rate) in enumerate(zip(categories, rates, strict=True)):
        x = left + i * slot + (slot - col_w) / 2
        if rate is not None:
            h = rate / peak * plot_h
            color = "#e53e3e" if rate > threshold else "#38a169"
            body.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{col_w:.1f}" height="{h:.1f}" '
                        f'fill="{color}"/><text x="{x + col_w / 2:.1f}" y="{top + plot_h - h - 3:.1f}" '
                        f'text-anchor="middle">{100 * rate:.2f} %</text>')
        body.append(f'<text x="{x + col_w / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle">'
                    f"{escape(category)}</text>")
    body.append(f'<line x1="{left}" y1="{ty:.1f}" x2="{width - right}" y2="{ty:.1f}" stroke="#c53030" '
                f'stroke-dasharray="5,3"/><text x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end" fill="#c53030">'
                f"{100 * threshold:g} %</text>")
    return _svg(width, height, body, title)


def intervals(title: str, rows: Sequence[tuple[str, float | None, float | None, float | None, str]],
              unit_scale: float = 100.0, unit: str = "%", zero_line: bool = False, width: int = 620) -> str:
    """Forest plot: per row (label, estimate, low, high, text) a dot and its interval on a
    shared axis; a line at 0 when ``zero_line`` (lifts)."""
    label_w, text_w, row_h, top = 150, 210, 24, 8
    plot_w = width - label_w - text_w
    values = [v for _, e, lo, hi, _ in rows for v in (e, lo, hi) if v is not None]
    lo_axis = min([*values, 0.0] if zero_line else values or [0.0])
    hi_axis = max([*values, 0.0] if zero_line else values or [1.0])
    if hi_axis - lo_axis < 1e-9:
        hi_axis = lo_axis + 1e-3
    pad = (hi_axis - lo_axis) * 0.05
    lo_axis, hi_axis = lo_axis - pad, hi_axis + pad

    def x(v: float) -> float:
        return label_w + (v - lo_axis) / (hi_axis - lo_axis) * plot_w

    height = top + row_h * len(rows) + 22
    body = [f'<line x1="{label_w}" y1="{height - 20}" x2="{label_w + plot_w}" y2="{height - 20}" stroke="#999"/>',
            f'<text x="{label_w}" y="{height - 6}">{unit_scale * lo_axis:.1f} {unit}</text>',
            f'<text x="{label_w + plot_w}" y="{height - 6}" text-anchor="end">{unit_scale * hi_axis:.1f} {unit}</text>']
    if zero_line:
        body.append(f'<line x1="{x(0):.1f}" y1="{top}" x2="{x(0):.1f}" y2="{height - 20}" stroke="#718096" '
                    f'stroke-dasharray="3,3"/>')
    for i, (label, estimate, low, high, text) in enumerate(rows):
        y = top + i * row_h + row_h / 2
        body.append(f'<text x="{label_w - 8}" y="{y + 4:.1f}" text-anchor="end">{escape(label)}</text>')
        if low is not None and high is not None:
            body.append(f'<line x1="{x(low):.1f}" y1="{y:.1f}" x2="{x(high):.1f}" y2="{y:.1f}" stroke="#2b6cb0" '
                        f'stroke-width="2"/>')
            for end in (low, high):
                body.append(f'<line x1="{x(end):.1f}" y1="{y - 5:.1f}" x2="{x(end):.1f}" y2="{y + 5:.1f}" '
                            f'stroke="#2b6cb0" stroke-width="2"/>')
        if estimate is not None:
            body.append(f'<circle cx="{x(estimate):.1f}" cy="{y:.1f}" r="4.5" fill="#1a365d"/>')
        body.append(f'<text x="{label_w + plot_w + 10}" y="{y + 4:.1f}">{escape(text)}</text>')
    return _svg(width, height, body, title)
