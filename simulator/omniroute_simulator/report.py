"""report.html: the run's figures for an operations manager, plots as inline SVG.

No plotting library: each chart is a few SVG elements written here, so the
report is one self-contained file that opens in any browser, offline.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

from omniroute_router.config import WorkspaceConfig
from omniroute_simulator.runner import Series
from omniroute_simulator.scenario import Scenario

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
W, H = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 60, 150, 20, 45


def render(
    title: str, data: dict[str, Any], over: Series, scenario: Scenario, config: WorkspaceConfig
) -> str:
    """The whole report as one HTML page."""
    run = data["run"]
    hours = [t / 3600 for t in over.times]
    warm_h = scenario.warmup_s / 3600
    sl_series = []
    for q, rows in over.queues.items():
        points = [(h, r["service_level"] * 100) for h, r in zip(hours, rows, strict=True)]
        sl_series.append((q, [(x, y) for x, y in points if not math.isnan(y)]))
    targets = sorted({v for v in config.service_levels.values()})
    depth_series = [
        (q, [(h, r["waiting"]) for h, r in zip(hours, rows, strict=True)])
        for q, rows in over.queues.items()
    ]
    occ_series = [
        (g, [(h, v * 100) for h, v in zip(hours, values, strict=True)])
        for g, values in over.occupancy.items()
    ]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1000px;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;"
        "text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
        ".ci{color:#777;font-size:85%}.miss{color:#b00;font-weight:bold}.ok{color:#070}"
        "figure{margin:1.5em 0}figcaption{color:#555;font-size:90%}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p>Workspace <b>{_e(run['workspace'])}</b>; {run['replications']} replication(s) "
        f"of {_hours(run['duration_s'])} each (first {_hours(run['warmup_s'])} warm-up, not "
        f"counted); seed {run['seed']}. Figures are means across replications with their 95% "
        "interval (±). Service level: contacts answered within the channel's target divided "
        "by all contacts that arrived (those who hung up count as missed).</p>",
        "<h2>Queues</h2>",
        _queue_table(data, config, scenario),
        "<p class='ci'>Agent time: the share of all agents' time on shift spent on the "
        "queue's contacts (offered, in work, wrap-up); overall, the share spent on any.</p>",
        "<h2>Agent groups</h2>",
        _group_table(data),
        _figure(
            "Service level over time",
            _lines(
                sl_series,
                "hours since start",
                "% answered within target",
                (0, 100),
                vline=warm_h,
            ),
            "Share of the contacts arriving in each interval that were answered within their "
            f"channel's target ({', '.join(f'{k} {v:g} s' for k, v in config.service_levels.items())}). "
            "The dotted line marks the end of the warm-up.",
        ),
        _figure(
            "Queue depth over time",
            _lines(depth_series, "hours since start", "contacts waiting", None, vline=warm_h),
            "Customers waiting to be answered, averaged over each interval (and across "
            "replications), per queue.",
        ),
        _figure(
            "Occupancy by agent group",
            _bars(
                [(g, v["occupancy"]) for g, v in data["agent_groups"].items()],
                "% of time on shift busy",
            ),
            "Share of the group's time on shift spent holding at least one contact (offered, "
            "in work or in wrap-up) over the measured period, with its 95% interval.",
        ),
        _figure(
            "Occupancy over time",
            _lines(occ_series, "hours since start", "% of agents busy", (0, 100), vline=warm_h),
            "Share of the agents on shift holding a contact at the end of each interval.",
        ),
        _figure(
            "Wait distribution",
            _lines(
                _cdfs(over.waits),
                "wait in seconds",
                "% of answered contacts",
                (0, 100),
                vlines=targets,
            ),
            "Share of the answered contacts answered within each wait (cumulative), per queue, up "
            "to the longest 0.5% of waits; dashed lines at the service-level targets in that range.",
        ),
        "</body></html>",
    ]
    return "\n".join(parts)


def _queue_table(data: dict[str, Any], config: WorkspaceConfig, scenario: Scenario) -> str:
    rows = [
        "<table><tr><th>queue</th><th>offered</th><th>answered</th><th>abandoned</th>"
        "<th>service level</th><th>P(wait)</th><th>ASA</th><th>abandon rate</th>"
        "<th>agent time</th></tr>"
    ]
    for name, q in [*data["queues"].items(), ("overall", data["overall"])]:
        rows.append(
            f"<tr><td>{_e(name)}</td><td>{_num(q['offered'])}</td><td>{_num(q['answered'])}</td>"
            f"<td>{_num(q['abandoned'])}</td><td>{_pct(q['service_level'])}</td>"
            f"<td>{_pct(q['p_wait'])}</td><td>{_num(q['asa_s'], ' s', 1)}</td>"
            f"<td>{_pct(q['abandon_rate'])}</td><td>{_pct(q['occupancy'])}</td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def _group_table(data: dict[str, Any]) -> str:
    rows = ["<table><tr><th>group</th><th>agents</th><th>tier</th><th>occupancy</th></tr>"]
    for name, g in data["agent_groups"].items():
        rows.append(
            f"<tr><td>{_e(name)}</td><td>{g['count']}</td><td>{g['tier']}</td>"
            f"<td>{_pct(g['occupancy'])}</td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def _figure(title: str, svg: str, caption: str) -> str:
    return f"<figure><h3>{_e(title)}</h3>{svg}<figcaption>{_e(caption)}</figcaption></figure>"


def _cdfs(waits: dict[str, list[float]]) -> list[tuple[str, list[tuple[float, float]]]]:
    result = []
    for q, values in waits.items():
        if not values:
            continue
        ordered = sorted(values)
        n = len(ordered)
        top = ordered[min(n - 1, int(n * 0.995))] or 1.0
        steps = 120
        points = []
        j = 0
        for k in range(steps + 1):
            x = top * k / steps
            while j < n and ordered[j] <= x:
                j += 1
            points.append((x, 100 * j / n))
        result.append((q, points))
    return result


def _scale(lo: float, hi: float, size: float, flip: bool) -> Any:
    span = hi - lo or 1.0

    def to(v: float) -> float:
        f = (v - lo) / span
        return (1 - f) * size if flip else f * size

    return to


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _lines(
    series: Sequence[tuple[str, list[tuple[float, float]]]],
    xlabel: str,
    ylabel: str,
    yrange: tuple[float, float] | None,
    hlines: Sequence[float] = (),
    vline: float | None = None,
    vlines: Sequence[float] = (),
) -> str:
    xs = [x for _, pts in series for x, _ in pts]
    ys = [y for _, pts in series for _, y in pts]
    if not xs or not ys:
        return "<p><i>no data</i></p>"
    x0, x1 = min(0.0, min(xs)), max(xs) or 1.0
    if yrange is None:
        y0, y1 = 0.0, max(1.0, max(ys) * 1.1)
    else:
        y0, y1 = yrange
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    fx, fy = _scale(x0, x1, pw, False), _scale(y0, y1, ph, True)
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{W}' height='{H}' "
        f"viewBox='0 0 {W} {H}' role='img' font-size='12'>",
        f"<g transform='translate({LEFT},{TOP})'>",
        f"<rect width='{pw}' height='{ph}' fill='#fff' stroke='#999'/>",
    ]
    for t in _ticks(y0, y1):
        y = fy(t)
        out.append(f"<line x1='0' x2='{pw}' y1='{y:.1f}' y2='{y:.1f}' stroke='#eee'/>")
        out.append(f"<text x='-6' y='{y + 4:.1f}' text-anchor='end'>{t:g}</text>")
    for t in _ticks(x0, x1, 8):
        x = fx(t)
        out.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{ph}' y2='{ph + 4}' stroke='#999'/>")
        out.append(f"<text x='{x:.1f}' y='{ph + 17}' text-anchor='middle'>{t:g}</text>")
    for h in hlines:
        out.append(
            f"<line x1='0' x2='{pw}' y1='{fy(h):.1f}' y2='{fy(h):.1f}' stroke='#555' stroke-dasharray='6 4'/>"
        )
    for v in (v for v in vlines if x0 <= v <= x1):
        out.append(
            f"<line x1='{fx(v):.1f}' x2='{fx(v):.1f}' y1='0' y2='{ph}' stroke='#555' stroke-dasharray='6 4'/>"
        )
    if vline:
        out.append(
            f"<line x1='{fx(vline):.1f}' x2='{fx(vline):.1f}' y1='0' y2='{ph}' stroke='#999' stroke-dasharray='2 3'/>"
        )
    for i, (name, pts) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{fx(x):.1f},{fy(min(max(y, y0), y1)):.1f}" for x, y in pts)
        out.append(f"<polyline points='{path}' fill='none' stroke='{colour}' stroke-width='2'/>")
        out.append(
            f"<rect x='{pw + 12}' y='{i * 18}' width='12' height='12' fill='{colour}'/>"
            f"<text x='{pw + 30}' y='{i * 18 + 10}'>{_e(name)}</text>"
        )
    out.append(
        f"<text x='{pw / 2}' y='{ph + 36}' text-anchor='middle'>{_e(xlabel)}</text>"
        f"<text transform='translate(-44,{ph / 2}) rotate(-90)' text-anchor='middle'>{_e(ylabel)}</text>"
        "</g></svg>"
    )
    return "".join(out)


def _bars(values: Sequence[tuple[str, dict[str, Any]]], ylabel: str) -> str:
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    fy = _scale(0, 100, ph, True)
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{W}' height='{H}' "
        f"viewBox='0 0 {W} {H}' role='img' font-size='12'>",
        f"<g transform='translate({LEFT},{TOP})'>",
        f"<rect width='{pw}' height='{ph}' fill='#fff' stroke='#999'/>",
    ]
    for t in _ticks(0, 100):
        out.append(f"<line x1='0' x2='{pw}' y1='{fy(t):.1f}' y2='{fy(t):.1f}' stroke='#eee'/>")
        out.append(f"<text x='-6' y='{fy(t) + 4:.1f}' text-anchor='end'>{t:g}</text>")
    slot = pw / max(1, len(values))
    for i, (name, est) in enumerate(values):
        mean = est["mean"]
        if mean is None:
            continue
        x = i * slot + slot * 0.2
        bw = slot * 0.6
        colour = COLOURS[i % len(COLOURS)]
        out.append(
            f"<rect x='{x:.1f}' y='{fy(mean * 100):.1f}' width='{bw:.1f}' "
            f"height='{ph - fy(mean * 100):.1f}' fill='{colour}'/>"
        )
        lo, hi = est["low"] * 100, est["high"] * 100
        cx = x + bw / 2
        out.append(
            f"<line x1='{cx:.1f}' x2='{cx:.1f}' y1='{fy(min(hi, 100)):.1f}' y2='{fy(max(lo, 0)):.1f}' stroke='#000'/>"
        )
        out.append(
            f"<text x='{cx:.1f}' y='{fy(mean * 100) - 6:.1f}' text-anchor='middle'>{mean * 100:.1f}%</text>"
            f"<text x='{cx:.1f}' y='{ph + 17}' text-anchor='middle'>{_e(name)}</text>"
        )
    out.append(
        f"<text transform='translate(-44,{ph / 2}) rotate(-90)' text-anchor='middle'>{_e(ylabel)}</text>"
        "</g></svg>"
    )
    return "".join(out)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds:g} s"


def _ci(est: dict[str, Any], fmt: str) -> str:
    if not est.get("ci95"):
        return ""
    return f" <span class='ci'>± {fmt.format(est['ci95'])}</span>"


def _pct(est: dict[str, Any]) -> str:
    if est["mean"] is None:
        return "-"
    return f"{est['mean'] * 100:.1f}%" + (
        f" <span class='ci'>± {est['ci95'] * 100:.1f}</span>" if est["ci95"] else ""
    )


def _num(est: dict[str, Any], unit: str = "", digits: int = 0) -> str:
    if est["mean"] is None:
        return "-"
    return f"{est['mean']:.{digits}f}{unit}" + _ci(est, "{:." + str(max(digits, 1)) + "f}")
