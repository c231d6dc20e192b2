"""`crm-qualify duplicates`: the duplicate groups and the records that are no one, for people.

Built from the mirror (no API call): every mirrored record is compared, not only a run's
blocks, so the report is the complete answer. The connector never merges: each group names a
suggested survivor (`[identity] survivor`) for a person to act on in the CRM.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html import escape
from typing import Any

from crm_qualify.connector.decision.duplicates import Candidate, DuplicateGroup, group_candidates
from crm_qualify.connector.decision.identity_rules import IdentityRules
from crm_qualify.connector.decision.validity import ValidityFlag, validity_flags
from crm_qualify.connector.model import Contact
from crm_qualify.connector.ops.report_html import STYLE

Key = tuple[str, str]


@dataclass(frozen=True)
class Shown:
    """What a person needs to recognise a record."""

    name: str
    email: str | None
    company: str | None
    created_at: str | None


@dataclass
class DuplicatesReport:
    records: int
    groups: list[DuplicateGroup]
    flagged: list[tuple[Key, list[ValidityFlag]]]
    shown: dict[Key, Shown] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "groups": [
                {
                    "id": group.id,
                    "confidence": group.confidence,
                    "rules": group.rules,
                    "survivor": _ref(group.survivor),
                    "members": [
                        {**_ref(member), **vars(self.shown[member])} for member in group.members
                    ],
                }
                for group in self.groups
            ],
            "flagged": [
                {
                    **_ref(key),
                    **vars(self.shown[key]),
                    "flags": [{"rule": f.rule, "reason": f.reason} for f in flags],
                }
                for key, flags in self.flagged
            ],
            "summary": self.summary(),
        }

    def summary(self) -> dict[str, Any]:
        return {
            "groups": len(self.groups),
            "records_in_groups": sum(len(group.members) for group in self.groups),
            "groups_by_rule": dict(
                sorted(Counter(rule for g in self.groups for rule in g.rules).items())
            ),
            "flagged": len(self.flagged),
            "flagged_by_rule": dict(
                sorted(Counter(f.rule for _, flags in self.flagged for f in flags).items())
            ),
        }


def build_duplicates(batches: Iterable[list[Contact]], rules: IdentityRules) -> DuplicatesReport:
    candidates: list[Candidate] = []
    shown: dict[Key, Shown] = {}
    flagged: list[tuple[Key, list[ValidityFlag]]] = []
    for batch in batches:
        for contact in batch:
            key = (contact.object_type, contact.id)
            candidates.append(Candidate.of(contact, rules))
            shown[key] = Shown(
                name=" ".join(p for p in (contact.first_name, contact.last_name) if p) or "",
                email=contact.email,
                company=contact.company,
                created_at=contact.created_at.isoformat() if contact.created_at else None,
            )
            if flags := validity_flags(contact, rules.validity):
                flagged.append((key, flags))
    groups = group_candidates(candidates, rules)
    keep = {member for group in groups for member in group.members} | {k for k, _ in flagged}
    return DuplicatesReport(
        records=len(candidates),
        groups=groups,
        flagged=sorted(flagged),
        shown={key: value for key, value in shown.items() if key in keep},
    )


def named_as_written(report: DuplicatesReport, persons: Mapping[Key, str]) -> None:
    """Each group under the id crm-qualify writes to its records' `duplicate_group` (the
    person most of its members have in the identity index), so a CRM list view filtered on
    the id the report shows finds the group. A group none of whose records is indexed yet
    keeps its oldest member's key."""
    for group in report.groups:
        held = Counter(persons[m] for m in group.members if m in persons)
        if held:
            group.id = max(held, key=held.__getitem__)


def text_report(report: DuplicatesReport) -> str:
    summary = report.summary()
    lines = [
        f"{summary['groups']} duplicate group(s) holding {summary['records_in_groups']}"
        f" of {report.records} records; {summary['flagged']} record(s) flagged as no one.",
    ]
    for group in report.groups:
        lines.append("")
        lines.append(
            f"group {group.id}  confidence {group.confidence:.2f}  rules {', '.join(group.rules)}"
        )
        for member in group.members:
            mark = "keep" if member == group.survivor else "    "
            lines.append(f"  {mark} {_line(member, report.shown[member])}")
    if report.flagged:
        lines.append("")
        lines.append("flagged records:")
        for key, flags in report.flagged:
            reasons = "; ".join(flag.reason for flag in flags)
            lines.append(f"  {_line(key, report.shown[key])}: {reasons}")
    return "\n".join(lines)


def html_report(report: DuplicatesReport) -> str:
    summary = report.summary()
    rows = []
    for group in report.groups:
        members = "".join(
            f"<tr{' class=total' if member == group.survivor else ''}>"
            f"<td class='left nowrap' data-label=keep>"
            f"{'keep' if member == group.survivor else 'no'}</td>"
            f"{_record_cells(member, report.shown[member])}"
            f"<td class=left data-label=email>{escape(report.shown[member].email or '')}</td>"
            f"<td class=left data-label=company>"
            f"{escape(report.shown[member].company or '')}</td></tr>"
            for member in group.members
        )
        rows.append(
            f"<h3>{escape(_heading(report.shown[group.survivor]))} <span class=sub>group"
            f" {escape(group.id)}, confidence {group.confidence:.2f},"
            f" {escape(', '.join(group.rules))}</span></h3><table class=cards>"
            "<tr><th class=left>keep</th><th class=left>record</th><th class=left>name</th>"
            "<th>created</th><th class=left>email</th><th class=left>company</th></tr>"
            f"{members}</table>"
        )
    flagged = "".join(
        f"<tr>{_record_cells(key, report.shown[key])}"
        f"<td class=left data-label=email>{escape(report.shown[key].email or '')}</td>"
        f"<td class=why data-label=why>{escape('; '.join(flag.reason for flag in flags))}"
        "</td></tr>"
        for key, flags in report.flagged
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>crm-qualify duplicates</title><style>{STYLE}</style></head><body>"
        "<h1>Duplicates and records that are no one</h1>"
        f"<p class=sub>{report.records} records compared. The connector never merges: the"
        " record marked keep is the suggested survivor.</p><div class=grid>"
        f"<div class=card><div class=k>duplicate groups</div><div class=big>"
        f"{summary['groups']}</div></div>"
        f"<div class=card><div class=k>records in groups</div><div class=big>"
        f"{summary['records_in_groups']}</div></div>"
        f"<div class=card><div class=k>flagged records</div><div class=big>"
        f"{summary['flagged']}</div></div></div>"
        f"<h2>Groups</h2>{''.join(rows) or '<p>None.</p>'}"
        "<h2>Flagged records</h2>"
        + (
            "<table class=cards><tr><th class=left>record</th><th class=left>name</th>"
            "<th>created</th><th class=left>email</th><th class=left>why</th></tr>"
            f"{flagged}</table>"
            if flagged
            else "<p>None.</p>"
        )
        + "</body></html>"
    )


def _ref(key: Key) -> dict[str, str]:
    return {"object_type": key[0], "id": key[1]}


def _line(key: Key, shown: Shown) -> str:
    parts = [":".join(key), shown.name or "(no name)"]
    if shown.email:
        parts.append(f"<{shown.email}>")
    if shown.company:
        parts.append(shown.company)
    if shown.created_at:
        parts.append(f"created {shown.created_at[:10]}")
    return "  ".join(parts)


def _record_cells(key: Key, shown: Shown) -> str:
    """Record, name and creation day: the cells a person recognises a record by."""
    return (
        f"<td class=left data-label=record>{escape(':'.join(key))}</td>"
        f"<td class=left data-label=name>{escape(shown.name)}</td>"
        f"<td class=nowrap data-label=created>{escape((shown.created_at or '')[:10])}</td>"
    )


def _heading(survivor: Shown) -> str:
    """A group is named by its survivor: the name, else the address."""
    return survivor.name or survivor.email or "no name"
