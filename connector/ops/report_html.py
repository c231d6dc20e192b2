"""The report as one self-contained HTML file: inline SVG charts, no script, no network."""

from __future__ import annotations

from html import escape

from crm_qualify.connector.ops.report import FUNNEL, Report

STYLE = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:960px;color:#1f2933;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.1rem;margin-top:2rem}
.sub{color:#61707d}.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));
gap:1rem}.card{border:1px solid #e4e7eb;border-radius:8px;padding:1rem}
.big{font-size:1.8rem;font-weight:600}table{border-collapse:collapse}td,th{padding:.25rem .8rem;
text-align:right}th:first-child,td:first-child{text-align:left}svg text{font:12px system-ui}
"""
COLORS = ["#3b82f6", "#6366f1", "#8b5cf6", "#ec4899", "#10b981"]


def _hbars(rows: list[tuple[str, float, str]], width: int = 620) -> str:
    """Horizontal bars: (label, value, caption)."""
    top = max((v for _, v, _ in rows), default=0) or 1
    height = 30 * len(rows) + 10
    parts = [f'<svg width="{width}" height="{height}" role="img">']
    for i, (label, value, caption) in enumerate(rows):
        y = 10 + 30 * i
        bar = (width - 260) * value / top
        color = COLORS[i % len(COLORS)]
        parts.append(f'<text x="0" y="{y + 15}">{escape(label)}</text>')
        parts.append(f'<rect x="110" y="{y}" width="{bar:.1f}" height="20" rx="3" fill="{color}"/>')
        parts.append(f'<text x="{116 + bar:.1f}" y="{y + 15}">{escape(caption)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _columns(rows: list[tuple[str, int]], width: int = 620, height: int = 180) -> str:
    top = max((v for _, v in rows), default=0) or 1
    step = width / max(len(rows), 1)
    parts = [f'<svg width="{width}" height="{height + 40}" role="img">']
    for i, (label, value) in enumerate(rows):
        bar = height * value / top
        x = i * step + 4
        parts.append(
            f'<rect x="{x:.1f}" y="{height - bar + 15:.1f}" width="{step - 8:.1f}"'
            f' height="{bar:.1f}" rx="3" fill="#3b82f6"/>'
        )
        parts.append(f'<text x="{x:.1f}" y="{height - bar + 10:.1f}">{value}</text>')
        parts.append(f'<text x="{x:.1f}" y="{height + 32}">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.0%}"


def _attention(records: list[dict]) -> str:
    """The first records the CRM refused or we could not translate, each with its field."""
    if not records:
        return '<p class="sub">None: every record was read and written.</p>'
    rows = "".join(
        f"<tr><td>{escape(r['object_type'])}/{escape(r['contact_id'])}</td>"
        f"<td>{escape(r['field'] or 'record')}</td><td>{escape(r['reason'])}</td></tr>"
        for r in records[:50]
    )
    more = f'<p class="sub">… and {len(records) - 50} more.</p>' if len(records) > 50 else ""
    return f"<table><tr><th>record</th><th>field</th><th>why</th></tr>{rows}</table>{more}"


def _sla_card(kind: str, row: dict) -> str:
    return (
        f'<div class="card"><div>{escape(kind.replace("_", " "))} within'
        f' {row["target_hours"]} h</div><div class="big">{_percent(row["on_time_rate"])}</div>'
        f'<div class="sub">{row["created"]} created, {row["due_by_now"]} due,'
        f" {row['escalated']} escalated"
        + (f", {row['done_in_crm']} done in the CRM" if "done_in_crm" in row else "")
        + "</div></div>"
    )


def html_report(report: Report) -> str:
    funnel = [
        (s.value.upper() if len(s.value) <= 3 else s.value, report.reached[s.value],
         f"{report.reached[s.value]} reached, {report.stages[s.value]} now")
        for s in FUNNEL
    ]  # fmt: skip
    conversions = "".join(
        f"<tr><td>{a} → {b}</td><td>{_percent(r)}</td>"
        f"<td>{'–' if report.median_days.get(a) is None else report.median_days[a]}</td></tr>"
        for a, b, r in report.conversions
    )
    temperatures = [
        (name, report.temperatures[name], str(report.temperatures[name]))
        for name in ("hot", "warm", "cold")
    ]
    sla_cards = "".join(_sla_card(kind, row) for kind, row in report.sla.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>crm-qualify report</title>
<style>{STYLE}</style></head><body>
<h1>Pipeline report</h1>
<div class="sub">{escape(report.instance)} · {report.generated_at:%Y-%m-%d %H:%M} UTC ·
{report.contacts} contacts · {report.runs} runs</div>
<h2>Funnel</h2>{_hbars(funnel)}
<h2>Conversion and time in stage</h2>
<table><tr><th>step</th><th>conversion</th><th>median days in first stage</th></tr>
{conversions}</table>
<h2>Follow-up SLAs</h2><div class="grid">{sla_cards}</div>
<h2>Scores</h2>{_columns(report.scores)}
<h2>Temperature</h2>{_hbars(temperatures)}
<h2>Records needing attention: {len(report.attention)}</h2>{_attention(report.attention)}
<p class="sub">From the {escape(report.source)}. A follow-up counts as late when it was still open
past its due time when a run looked (it was escalated).</p>
</body></html>
"""
