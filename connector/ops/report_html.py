"""The report as one self-contained HTML file: CSS charts, no script, no network.

Every chart is HTML and CSS (bars are sized in percent), so the page reflows from a desktop
screen to a phone without clipping; tables of people turn into cards below 620 px.
"""

from __future__ import annotations

from html import escape

from crm_qualify.connector.model import Stage
from crm_qualify.connector.ops.report import (
    FUNNEL,
    SLA_MEASURE,
    SLA_NAMES,
    HotLead,
    Report,
    conversion_note,
    hot_notes,
    median_note,
    no_temperature_label,
    plural,
    rules_line,
    sla_detail,
    sla_headline,
    sla_within,
    stage_rows,
    waited_text,
)

STYLE = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem auto;
max-width:980px;color:#1f2933;padding:0 1rem;-webkit-text-size-adjust:100%;
print-color-adjust:exact;-webkit-print-color-adjust:exact}
h1{font-size:1.5rem;margin:0 0 .2rem}h2{font-size:1.1rem;margin:2rem 0 .6rem}
.sub{color:#52606d;font-size:.9rem}.note{color:#52606d;font-size:.85rem;margin:.5rem 0 0}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(190px,1fr));gap:.8rem}
.grid.wide{grid-template-columns:repeat(auto-fit,minmax(min(100%,260px),1fr))}
.card{border:1px solid #e4e7eb;border-radius:8px;padding:.8rem 1rem;min-width:0}
.card .k{font-size:.85rem;color:#52606d}.big{font-size:1.6rem;font-weight:650;line-height:1.2}
.card.alert{border-color:#fca5a5;background:#fef2f2}
table{border-collapse:collapse;width:100%}table.narrow{max-width:560px}table.stages{max-width:680px}
td,th{padding:.35rem .6rem;text-align:right;vertical-align:top;border-bottom:1px solid #f0f2f4}
th{font-size:.8rem;color:#52606d;font-weight:600}
th:first-child,td:first-child,.left{text-align:left}
td.why{text-align:left;color:#52606d;font-size:.85rem}
td.left,td.lead,td.why,.card,.sub,h3,p,li{overflow-wrap:anywhere}.nowrap{white-space:nowrap}
tr.total td{font-weight:650;border-top:2px solid #cbd2d9}
.scroll{overflow-x:auto;max-width:100%}
.bars{display:grid;grid-template-columns:max-content minmax(0,1fr) max-content;
gap:.4rem .7rem;align-items:center;max-width:760px}
.bars .label{white-space:nowrap;font-size:.9rem}
.track{min-width:0}
.fill{height:1.3rem;border-radius:4px;background:var(--c,#6366f1);min-width:2px}
.bars .n{font-size:.85rem;white-space:nowrap}
.cols{display:flex;align-items:flex-end;gap:3px;height:190px;padding-top:1.2rem}
.col{flex:1 1 0;min-width:0;display:flex;flex-direction:column;justify-content:flex-end;
align-items:center;height:100%}
.col .bar{width:100%;background:#6366f1;border-radius:3px 3px 0 0;min-height:1px}
.col .n{font-size:.75rem;white-space:nowrap}
.axis{display:flex;gap:3px}.axis span{flex:1 1 0;min-width:0;text-align:center;font-size:.72rem;
color:#52606d;white-space:nowrap;overflow:hidden}
.axis .short{display:none}
.reasons{margin:.2rem 0 0;padding-left:1.1rem;font-size:.85rem;color:#3e4c59;text-align:left}
.leads td{text-align:left}.leads td.num{text-align:right}.leads td.lead{min-width:12rem}
.leads td.wait{min-width:9rem}
.leads td.why{width:42%}.rank{color:#52606d}
.late{color:#b91c1c;font-weight:600}
.dot{display:inline-block;width:.7rem;height:.7rem;border-radius:50%;margin-right:.3rem;
vertical-align:-.05rem}
@media (max-width:620px){
body{margin:1rem auto;padding:0 .75rem;font-size:14px}
.big{font-size:1.35rem}
.grid{grid-template-columns:repeat(auto-fit,minmax(140px,1fr))}
table.cards,table.cards tbody,table.cards tr,table.cards td{display:block;width:100%}
table.cards tr:first-child{display:none}
table.cards tr{border:1px solid #e4e7eb;border-radius:8px;margin:0 0 .6rem;padding:.4rem .2rem}
table.cards td{border:0;text-align:left;padding:.15rem .6rem}
table.cards td[data-label]::before{content:attr(data-label) ": ";color:#52606d;
font-size:.8rem}
.leads td.num,.leads td[data-label]{display:inline-block;width:auto;vertical-align:top}
.leads td.why{width:100%}
td,th{padding:.3rem .35rem}
.axis .full{display:none}.axis .short{display:inline}
}
"""
FUNNEL_COLOR = "#6366f1"
TEMPERATURE_COLORS = {"hot": "#dc2626", "warm": "#f59e0b", "cold": "#3b82f6"}
"""Hot reads red, warm amber, cold blue: the order a salesperson expects."""
NO_VALUE_COLOR = "#9aa5b1"
HOT_SHOWN = 15
ATTENTION_SHOWN = 50


def _bars(rows: list[tuple[str, int, str, str]]) -> str:
    """Horizontal bars: (label, value, caption, colour); widths in percent of the largest,
    so they fit any screen."""
    top = max((value for _, value, _, _ in rows), default=0) or 1
    parts = ['<div class="bars">']
    for label, value, caption, color in rows:
        width = 100 * value / top
        parts.append(
            f'<div class="label">{escape(label)}</div><div class="track">'
            f'<div class="fill" style="width:{width:.1f}%;--c:{color}"></div></div>'
            f'<div class="n">{escape(caption)}</div>'
        )
    parts.append("</div>")
    return "".join(parts)


def _columns(rows: list[tuple[str, int]]) -> str:
    """A histogram: one column per bucket, heights in percent of the tallest."""
    top = max((value for _, value in rows), default=0) or 1
    columns = "".join(
        f'<div class="col" title="{escape(label)}: {value}"><span class="n">{value}</span>'
        f'<div class="bar" style="height:{85 * value / top:.1f}%"></div></div>'
        for label, value in rows
    )
    axis = "".join(
        f'<span><span class="full">{escape(label)}</span>'
        f'<span class="short">{escape(label.split("-")[0])}</span></span>'
        for label, _ in rows
    )
    return f'<div class="cols">{columns}</div><div class="axis">{axis}</div>'


def _card(title: str, value: str, detail: str = "", alert: bool = False) -> str:
    return (
        f'<div class="card{" alert" if alert else ""}"><div class="k">{escape(title)}</div>'
        f'<div class="big">{escape(value)}</div>'
        + (f'<div class="sub">{escape(detail)}</div>' if detail else "")
        + "</div>"
    )


def _attention(records: list[dict]) -> str:
    """The first records the CRM refused or we could not translate, each with its field."""
    if not records:
        return '<p class="sub">None: every record was read and written.</p>'
    rows = "".join(
        f'<tr><td data-label="record">{escape(r["object_type"])}/{escape(r["contact_id"])}</td>'
        f'<td data-label="field" class="left">{escape(r["field"] or "record")}</td>'
        f'<td data-label="why" class="left">{escape(r["reason"])}</td></tr>'
        for r in records[:ATTENTION_SHOWN]
    )
    more = (
        f'<p class="sub">… and {len(records) - ATTENTION_SHOWN} more (crm-qualify errors).</p>'
        if len(records) > ATTENTION_SHOWN
        else ""
    )
    return (
        '<table class="cards"><tr><th>record</th><th class="left">field</th>'
        f'<th class="left">why</th></tr>{rows}</table>{more}'
    )


def _lead_row(rank: int, lead: HotLead, report: Report, call_hours: float) -> str:
    waited = lead.waited(report.generated_at)
    if lead.call_due is not None:  # its call's own target, as the SLA section judges it
        late = report.generated_at > lead.call_due
    else:
        late = waited is not None and waited.total_seconds() > call_hours * 3600
    wait = escape(waited_text(waited))
    if late:
        wait = f'<span class="late">{wait}</span>'
    reasons = "".join(f"<li>{escape(reason)}</li>" for reason in lead.reasons)
    who = [
        escape(lead.company or "company not known"),
        escape(f"owner {lead.owner}" if lead.owner else "no owner"),
    ]
    score = "no score" if lead.score is None else f"{lead.score:g}"
    record = f" · {escape(lead.record)}" if lead.name else ""
    return (
        f'<tr><td class="lead"><span class="rank">{rank}.</span>'
        f" <strong>{escape(lead.name or lead.record)}</strong>"
        f'<div class="sub">{" · ".join(who)}{record}</div></td>'
        f'<td class="num" data-label="score">{score}</td>'
        f'<td class="wait" data-label="waiting">{wait}'
        f'<div class="sub">{escape(lead.call)}</div></td>'
        f'<td class="why"><ul class="reasons">{reasons or "<li>no reasons recorded</li>"}'
        "</ul></td></tr>"
    )


_NOT_MIRRORED = (
    " This list does not check whether a lead's call task is done: report --from-crm leaves"
    " those leads out."
)


def _hot(report: Report) -> str:
    call_hours = report.call_hours
    notes = "".join(f'<p class="note">{escape(note)}.</p>' for note in hot_notes(report))
    if not report.hot:
        return f'<p class="sub">No hot lead is waiting for a call.</p>{notes}'
    rows = "".join(
        _lead_row(rank, lead, report, call_hours)
        for rank, lead in enumerate(report.hot[:HOT_SHOWN], 1)
    )
    more = (
        f'<p class="sub">… and {report.hot_total - HOT_SHOWN} more (report --json lists'
        f" {len(report.hot)}).</p>"
        if report.hot_total > HOT_SHOWN
        else ""
    )
    return (
        '<table class="cards leads"><tr><th class="left">who</th><th>score</th>'
        '<th class="left">waiting</th><th class="left">why hot (top reasons)</th></tr>'
        f"{rows}</table>{more}"
        f'<p class="note">Hot and not yet an opportunity, highest score first. Waiting: since'
        f" the contact turned hot (crm-qualify's temperature write) or since its oldest call"
        f" task still open; in red past its call task's due time (a lead with no call task"
        f" yet: past the {call_hours:g} h call target)."
        f"{'' if report.hot_called is not None else _NOT_MIRRORED}</p>{notes}"
    )


def _stage_table(report: Report) -> str:
    with_crm = report.trail_stages is not None
    head = "<tr><th>stage</th><th>" + ("CRM now" if with_crm else "now") + "</th>"
    if with_crm:
        head += "<th>crm-qualify wrote</th>"
    head += "<th>reached</th></tr>"
    rows = []
    stages = {s.value for s in Stage}
    for label, count, reached, _note in stage_rows(report):
        cells = f"<td>{escape(label)}</td><td>{count:,}</td>"
        if with_crm:
            assert report.trail_stages is not None
            wrote = report.trail_stages[label] if label in stages else report.trail_no_stage
            cells += f"<td>{wrote:,}</td>"
        cells += f"<td>{'' if reached is None else f'{reached:,}'}</td>"
        rows.append(f"<tr>{cells}</tr>")
    total = f"<td>total</td><td>{report.contacts:,}</td>"
    if with_crm:
        trail_total = sum((report.trail_stages or {}).values()) + report.trail_no_stage
        total += f"<td>{trail_total:,}</td>"
    total += "<td></td>"
    return (
        f'<div class="scroll"><table class="stages">{head}{"".join(rows)}'
        f'<tr class="total">{total}</tr></table></div>'
    )


def _no_stage_note(report: Report) -> str:
    if report.trail_stages is None:
        return (
            " 'Stage not written by crm-qualify': contacts crm-qualify scored whose stage was"
            " already right, so the audit trail does not know it."
        )
    return (
        " 'No stage': in the CRM column, contacts whose stage is empty in the CRM; in the"
        " crm-qualify column, contacts whose stage crm-qualify never wrote."
    )


def _sla_card(kind: str, row: dict) -> str:
    title = f"{SLA_NAMES.get(kind, kind)} {sla_within(row)}"
    return _card(title, sla_headline(row), sla_detail(row))


def html_report(report: Report) -> str:
    funnel = [
        (s.value.upper() if len(s.value) <= 3 else s.value, report.reached[s.value],
         f"{report.reached[s.value]:,} reached", FUNNEL_COLOR)
        for s in FUNNEL
    ]  # fmt: skip
    conversions = "".join(
        f'<tr><td>{a} → {b}</td><td class="left">{escape(conversion_note(report, a, r))}</td></tr>'
        for a, b, r in report.conversions
    )
    times = "".join(
        f'<tr><td>{s.value}</td><td class="left">{escape(median_note(report, s.value))}</td></tr>'
        for s in Stage
    )
    temperatures = [
        (name, report.temperatures[name], f"{report.temperatures[name]:,}", color)
        for name, color in TEMPERATURE_COLORS.items()
    ]
    temperatures += [
        (name, count, f"{count:,}", NO_VALUE_COLOR)
        for name, count in sorted(report.temperatures.items())
        if name not in TEMPERATURE_COLORS
    ]
    if report.no_temperature:
        temperatures.append(
            (
                no_temperature_label(report),
                report.no_temperature,
                f"{report.no_temperature:,}",
                NO_VALUE_COLOR,
            )
        )
    hot_call = report.sla.get("hot_call", {})
    kpis = "".join(
        [
            _card(
                "contacts",
                f"{report.contacts:,}",
                "in the CRM" if report.trail_stages is not None else "changed by crm-qualify",
            ),
            _card(
                "hot leads to call now",
                f"{report.hot_total:,}",
                "hot, not yet an opportunity",
                alert=report.hot_total > 0,
            ),
            _card(
                "hot leads called on time",
                sla_headline(hot_call),
                f"call tasks done {sla_within(hot_call)}",
            )
            if hot_call
            else "",
            _card(
                "records needing attention",
                f"{len(report.attention):,}",
                "the CRM refused a value, or a value could not be read",
                alert=bool(report.attention),
            ),
        ]
    )
    sla_cards = "".join(_sla_card(kind, row) for kind, row in report.sla.items())
    notes = "".join(f'<p class="note">{escape(note)}</p>' for note in report.notes)
    scores_note = (
        f'<p class="note">{report.unscored:,} contacts have no score.</p>'
        if report.unscored
        else ""
    )
    rules = f" · {escape(line)}" if (line := rules_line(report)) else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>crm-qualify report: {escape(report.instance)}</title>
<style>{STYLE}</style></head><body>
<h1>Pipeline report</h1>
<div class="sub">{escape(report.instance)} · {report.generated_at:%Y-%m-%d %H:%M} UTC ·
{report.contacts:,} contacts · {plural(report.runs, "sync")} ·
from the {escape(report.source)}{rules}</div>
{notes}
<h2>Key numbers</h2><div class="grid">{kpis}</div>
<h2 id="hot">Hot leads to call now: {report.hot_total:,}</h2>{_hot(report)}
<h2>Funnel</h2>{_bars(funnel)}
<p class="note">Reached: contacts at this stage or further along, now or at any time.</p>
<h2>Stages</h2>{_stage_table(report)}
<p class="note">Every contact is on one row, so the rows add up to the total.
{_no_stage_note(report)}</p>
<h2>Conversion</h2><div class="scroll"><table class="narrow"><tr><th>step</th>
<th class="left">conversion</th></tr>{conversions}</table></div>
<p class="note">Share of the contacts that reached a stage which also reached the next.</p>
<h2>Time in stage</h2><div class="scroll"><table class="narrow"><tr><th>stage</th>
<th class="left">median days in stage</th></tr>{times}</table></div>
<p class="note">Measured from crm-qualify's own stage writes: from the write that moved a
contact into a stage to the one that moved it out.</p>
<h2>Follow-up SLAs</h2><div class="grid wide">{sla_cards}</div>
<p class="note">What is measured: {escape(SLA_MEASURE)}</p>
<h2>Scores</h2>{_columns(report.scores)}{scores_note}
<h2>Temperature</h2>{_bars(temperatures)}
<h2>Records needing attention: {len(report.attention):,}</h2>{_attention(report.attention)}
</body></html>
"""
