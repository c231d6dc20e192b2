"""The CRM's clock, as the `Date` header of its answers gives it.

A read position is a moment in the CRM's own time: what changes after it is the next run's.
Ours can run ahead of the CRM's (a host or container without time sync). A position taken
from our clock is then ahead too, and whatever the CRM changes before its clock reaches that
moment, less the look-back, is never read by the incremental runs (seen on Salesforce: six
minutes ahead, a salesperson's edit made a minute after a run was missed until the next full
read). Adapters feed every answer's `Date` to a `CrmClock` and bound the positions they keep
by it. A clock behind the CRM's needs nothing: its positions are early, and the next run reads
from them again.

Decisions are another matter: they judge the CRM's times (an event's age, a follow-up's due
time) against our now, so a run stops before deciding when the two clocks are far apart
(`check_offset`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

PRECISION_SECONDS = 2.0
"""A `Date` header is in whole seconds and read a round trip late: an offset smaller than
this is no evidence that the clocks differ."""


class CrmClock:
    """How far the CRM's clock is from ours, from the latest answer that said."""

    def __init__(self, ours: Callable[[], float] = time.time) -> None:
        self.ours = ours
        """Our clock (epoch seconds)."""
        self._offset: float | None = None

    def observe(self, date_header: str | None) -> None:
        """An answer's `Date` header (RFC 9110, e.g. 'Tue, 01 Dec 2026 17:56:50 GMT'); one
        missing or unreadable tells nothing."""
        if not date_header:
            return
        try:
            theirs = parsedate_to_datetime(date_header)
        except (TypeError, ValueError, IndexError):
            return
        if theirs.tzinfo is None:
            return
        self._offset = theirs.timestamp() - self.ours()

    @property
    def offset(self) -> float | None:
        """Seconds the CRM's clock is ahead of ours (negative: behind), from the latest
        answer; None before one said."""
        return self._offset

    def bound(self, moment: datetime) -> datetime:
        """`moment`, or the CRM's now if that is earlier and its clock is behind ours by more
        than a `Date` header can tell."""
        if self._offset is None or self._offset > -PRECISION_SECONDS:
            return moment
        theirs = datetime.fromtimestamp(self.ours() + self._offset, UTC)
        return min(moment, theirs)


class ClockOffsetError(Exception):
    """Our clock is too far from the CRM's to decide on."""


NOTED_SECONDS = 60.0
"""An offset beyond this is logged: decisions are a minute or more off the CRM's time."""


def check_offset(offset: float | None, limit_minutes: float) -> str | None:
    """None when the clocks agree (or nothing said); a warning to log when they differ by more
    than a minute. Raises `ClockOffsetError` beyond `limit_minutes` (0: no limit).

    Decisions are made on our clock and judged against the CRM's times (an event's age, a
    follow-up's due time, the SLA from a task's creation): days apart, a run would escalate
    follow-ups not yet due, cool hot leads and flag re-nurture early, and once the clock was
    set right, re-heat them and call again. Nothing written then can be taken back."""
    if offset is None or abs(offset) <= NOTED_SECONDS:
        return None
    minutes = abs(offset) / 60
    span = f"{minutes:.0f} minutes" if minutes < 120 else f"{minutes / 60:.1f} hours"
    said = (
        f"our clock is {span} {'behind' if offset > 0 else 'ahead of'} the CRM's (its Date header)"
    )
    if limit_minutes and abs(offset) > limit_minutes * 60:
        raise ClockOffsetError(
            f"{said}, more than sync.max_clock_offset_minutes ({limit_minutes:g}): nothing was"
            " decided or written; set the host's time right (NTP)"
        )
    return f"{said}: decisions are that far off the CRM's time; set the host's time right (NTP)"
