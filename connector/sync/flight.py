"""Writes in flight: coalesced across read batches, several requests at once, acknowledged in
batch order.

A batch's field updates and task creations join the ones still waiting from earlier batches,
and leave in requests of the adapter's size (`Limits.write_batch` / `task_batch`). Items wait
for the next batch at most (then leave, even in a short request), so a run pays about one
short request per kind for every two batches instead of one per batch, and a batch is
acknowledged, its progress shown and a stop obeyed, one batch later at most. An adapter with
a bulk write API (`Limits.bulk_batch` / `bulk_from`) has items wait longer: batches stay open
while the records they decided number at most `bulk_batch` (what an open batch holds in memory
is per record: its keys, review moments and writes), so a bulk call gathers across as many
batches as fill it, and the cost in memory is the same whatever the batch size. Past that, the
oldest batches' items leave: all that waits in one bulk call once `bulk_from` have gathered,
else only enough requests of the REST size to cover them, the rest gathering on (a call the
engine packed itself, `Outgoing.whole`, leaves as one request once it numbers `bulk_from`,
even past `bulk_batch`). Each request goes to a write worker: requests for different records
are independent, so several are in flight at once, while the run's thread decides the next
batch.

A batch is acknowledged (its `then` runs, on the run's thread: audit trail, mirror, cursor)
only once every one of its items has its answer, and only after every earlier batch: a
cursor therefore never passes a record whose write is not acknowledged. At most `max_open`
batches wait (with a bulk API, `bulk_batch` records); past that the oldest batches' items leave
at once and the run waits for their answers.

A request that fails as a whole (the adapter raised) stops the sending. Once the requests in
flight have ended, `landed` records what did come back, for every batch still open, and the
error is raised: unsent updates stay intents and unsent tasks stay owed, for the next run to
settle, as after a crash. The tasks of a request that failed stay `pending` (it may have
created them), except those of a request refused for our configuration (`ConfigError`: it
created none), which are owed again (`Senders.refused_tasks`): the next run creates them at
its start, without waiting to look them up.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from crm_qualify.connector.contract import ConfigError, TaskResult, WriteResult
from crm_qualify.connector.model import PlannedTask, RecordUpdate
from crm_qualify.connector.sync.concurrency import Traffic

log = logging.getLogger(__name__)

R = TypeVar("R", WriteResult, TaskResult)
MAX_OPEN = 3
"""Batches whose writes may wait for answers (their contacts and decisions stay in memory)."""


@dataclass(frozen=True)
class Answer(Generic[R]):
    """One item's result and the round trip of the request that carried it."""

    result: R
    sent_at: datetime
    acked_at: datetime


@dataclass(eq=False)
class Outgoing:
    """One batch's writes; `then(self)` acknowledges them once all are answered."""

    updates: Sequence[RecordUpdate]
    tasks: Sequence[PlannedTask]
    then: Callable[[Outgoing], None]
    records: int = 0
    """The records the batch decided, which its acknowledgement keeps in memory while it
    waits (0: count its items); with a bulk API they bound how long writes gather."""
    whole: bool = False
    """With a bulk API: its updates, packed by the engine into one call (`bulk_calls`), leave
    in one request, even past `bulk_batch`, once they number `bulk_from`."""
    update_answers: list[Answer[WriteResult] | None] = field(default_factory=list)
    task_answers: list[Answer[TaskResult] | None] = field(default_factory=list)
    unanswered: int = 0

    def __post_init__(self) -> None:
        self.update_answers = [None] * len(self.updates)
        self.task_answers = [None] * len(self.tasks)
        self.unanswered = len(self.updates) + len(self.tasks)
        self.records = self.records or self.unanswered


Slot = tuple[Outgoing, int]
"""An item of a batch: the batch and the item's position in it."""


@dataclass(frozen=True)
class Senders:
    """The adapter's two write calls, each answering one result per item, in order (the
    engine checks that as answers come in: `boundary`), what the run records just before
    tasks leave, and what it records for tasks the CRM refused as a whole for our
    configuration (none created)."""

    updates: Callable[[Sequence[RecordUpdate]], list[WriteResult]]
    tasks: Callable[[Sequence[PlannedTask]], list[TaskResult]]
    before_tasks: Callable[[Sequence[PlannedTask]], None]
    refused_tasks: Callable[[Sequence[PlannedTask], ConfigError], None]


class Flight:
    """The writes of one run phase; `add` each batch in read order, then `drain`."""

    def __init__(
        self,
        traffic: Traffic,
        senders: Senders,
        landed: Callable[[Sequence[Outgoing]], None],
        *,
        max_open: int = MAX_OPEN,
    ) -> None:
        self.traffic = traffic
        self.senders = senders
        self.landed = landed
        self.max_open = max_open
        self.requests = 0
        self._open: deque[Outgoing] = deque()
        self._held = 0
        """Records of the open batches."""
        self._updates: list[Slot] = []
        self._tasks: list[Slot] = []
        self._flying: dict[Future[tuple[list[Any], datetime, datetime]], tuple[str, list[Slot]]]
        self._flying = {}
        self._error: BaseException | None = None

    def add(self, batch: Outgoing) -> None:
        self._open.append(batch)
        self._held += batch.records
        self._updates += [(batch, i) for i in range(len(batch.updates))]
        self._tasks += [(batch, i) for i in range(len(batch.tasks))]
        self._collect(block=False)  # a failed request stops the sending before more leaves
        self._send(due=0)
        self._collect(block=False)
        while due := self._due():
            self._send(due=due)
            self._collect(block=True)

    def drain(self) -> None:
        """Everything sent and acknowledged."""
        self._send(due=None)
        while self._open:
            self._collect(block=True)

    def abandon(self) -> None:
        """The run is ending on an error of its own: nothing more leaves; what landed is
        recorded (as far as the state store still can) once the requests in flight end."""
        self._updates, self._tasks = [], []
        if not self._flying:
            return
        wait(list(self._flying))
        for future in list(self._flying):
            self._answer(future)
        try:
            self.landed(list(self._open))
        except Exception:
            log.exception("the answers of writes in flight could not be recorded")
        self._open.clear()
        self._held = 0

    # sending --------------------------------------------------------------------------------
    def _due(self) -> int:
        """How many of the oldest open batches must be answered before the run goes on: those
        past `max_open`; with a bulk API, those whose records take the open batches past
        `bulk_batch` (the newest batch always stays open)."""
        limits = self.traffic.limits
        if not (limits.bulk_from and limits.bulk_batch and self.max_open):
            return max(0, len(self._open) - self.max_open)
        held, due = self._held, 0
        for batch in self._open:
            if held <= limits.bulk_batch or due == len(self._open) - 1:
                break
            held -= batch.records
            due += 1
        return due

    def _send(self, *, due: int | None) -> None:
        """`due` None: everything leaves (draining); else the items of the `due` oldest open
        batches must leave (0: none), with those that fill whole requests."""
        limits = self.traffic.limits
        must = None if due is None else set(list(self._open)[:due])
        for kind, waiting, size in (
            ("updates", self._updates, limits.write_batch),
            ("tasks", self._tasks, limits.task_batch),
        ):
            while waiting:
                count = self._count(waiting, size, must)
                if not count:
                    break
                chunk, waiting[:count] = waiting[:count], []
                self._launch(kind, chunk)

    def _count(self, waiting: list[Slot], size: int | None, must: set[Outgoing] | None) -> int:
        """How many waiting items leave in the next request; 0: they wait for a later batch.
        `must`: the batches whose items have to leave now (None: all of them).

        Without a bulk API items wait while they are all one batch's, fill no request and no
        batch is due: a batch with none of their kind (a chunk that plans no task) does not
        send them short, and the due rule bounds the wait to `max_open` batches. With a bulk
        API they wait until `bulk_batch` gather or their batch is due, and then leave in one
        bulk call once `bulk_from` have gathered, else in requests of `size`, as many as
        cover the due batches' items."""
        limits = self.traffic.limits
        bulk_from = limits.bulk_from or 0
        bulk = limits.bulk_batch if bulk_from else None
        oldest = waiting[0][0]
        if size is None:  # the adapter splits: each batch's items in one call
            return sum(1 for batch, _ in waiting if batch is oldest)
        if bulk and oldest.whole:
            count = sum(1 for batch, _ in waiting if batch is oldest)
            if count >= bulk_from:
                return count
        if bulk and len(waiting) >= bulk:
            return bulk
        if not bulk:
            if must is not None and not must and oldest is waiting[-1][0] and len(waiting) < size:
                return 0  # one batch's: the next batch with items of this kind fills it up
            return size
        if must is not None and oldest not in must:
            return 0
        return len(waiting) if len(waiting) >= bulk_from else size

    def _launch(self, kind: str, chunk: list[Slot]) -> None:
        if kind == "updates":
            items: list[Any] = [batch.updates[i] for batch, i in chunk]
            call: Callable[[Any], list[Any]] = self.senders.updates
        else:
            items = [batch.tasks[i] for batch, i in chunk]
            self.senders.before_tasks(items)
            call = self.senders.tasks
        self.requests += 1
        self._flying[self.traffic.submit(_timed, call, items)] = (kind, chunk)

    # answers --------------------------------------------------------------------------------
    def _collect(self, *, block: bool) -> None:
        if self._flying:
            done, _ = wait(
                list(self._flying), timeout=None if block else 0, return_when=FIRST_COMPLETED
            )
            for future in done:
                self._answer(future)
        if self._error is not None:
            self._fail()
        self._acknowledge_front()

    def _acknowledge_front(self) -> None:
        """The oldest open batches that are fully answered, in order."""
        while self._open and self._open[0].unanswered == 0:
            batch = self._open.popleft()
            self._held -= batch.records
            batch.then(batch)

    def _answer(self, future: Future[tuple[list[Any], datetime, datetime]]) -> None:
        kind, chunk = self._flying.pop(future)
        error = future.exception()
        if error is not None:
            if kind == "tasks" and isinstance(error, ConfigError):
                self.senders.refused_tasks([batch.tasks[i] for batch, i in chunk], error)
            self._error = self._error or error
            return
        results, sent_at, acked_at = future.result()
        for (batch, i), result in zip(chunk, results, strict=True):
            answers: list[Any] = batch.update_answers if kind == "updates" else batch.task_answers
            answers[i] = Answer(result, sent_at, acked_at)
            batch.unanswered -= 1

    def _fail(self) -> None:
        """Stop sending, let the requests in flight end, acknowledge the batches complete
        at the front, record what landed for the rest, and raise the first error."""
        error = self._error
        self._updates, self._tasks = [], []
        wait(list(self._flying))
        for future in list(self._flying):
            self._answer(future)
        self._acknowledge_front()
        self.landed(list(self._open))
        self._open.clear()
        self._held = 0
        self._error = None
        raise error  # type: ignore[misc]


def _timed(call: Callable[[Any], list[Any]], items: Any) -> tuple[list[Any], datetime, datetime]:
    sent_at = datetime.now(UTC)
    results = call(items)
    return results, sent_at, datetime.now(UTC)
