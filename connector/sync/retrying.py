"""The retry policy as data: which failures are transient, and how long to back off.

Adapters classify their client's errors into a `Failure`; `call_with_retries` retries only the
transient ones (429, 5xx, timeouts, dropped connections, lock contention) with jittered
exponential backoff and a cap, honouring a server's `Retry-After`. Everything else (400, 401,
403, 404, validation) is raised at once so it becomes a clear error.

A call that is not safe to repeat (a create) is retried only after failures that prove the
request was not processed (`Failure.unprocessed`: a 429, a refused connection). Any other
transient failure may have landed, so it is raised as `OutcomeUnknown` and the caller asks
the CRM before sending again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity.nap
from crm_qualify.connector.contract import OutcomeUnknown
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Failure:
    """How an adapter classified an exception."""

    transient: bool
    retry_after: float | None = None
    kind: str = "error"
    unprocessed: bool = False
    """True when the CRM certainly did not act on the request (throttled, never connected)."""


Classifier = Callable[[BaseException], Failure]

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


def status_failure(status: int | None, retry_after: float | None = None) -> Failure:
    """The default table: HTTP status -> transient or not."""
    if status is None:
        return Failure(transient=True, kind="connection")
    if status == 429:
        return Failure(transient=True, retry_after=retry_after, kind="throttled", unprocessed=True)
    if status in TRANSIENT_STATUSES:
        return Failure(transient=True, retry_after=retry_after, kind=f"http_{status}")
    return Failure(transient=False, kind=f"http_{status}")


def call_with_retries(
    call: Callable[[], T],
    classify: Classifier,
    *,
    attempts: int = 6,
    max_wait: float = 30.0,
    on_retry: Callable[[Failure], None] | None = None,
    idempotent: bool = True,
    what: str = "request",
    sleep: Callable[[float], None] | None = None,
) -> T:
    """Run `call`, retrying transient failures; the last failure is re-raised unchanged.

    With `idempotent=False`, only unprocessed failures are retried; a transient failure that
    may have reached the CRM is raised as `OutcomeUnknown` (from the original error). `what`
    names the request in the retry's log line (`POST tasks/batch/create`). `sleep` waits
    out each backoff (tenacity's own by default; `Traffic.backoff` ends a given-up read's).
    """
    if not idempotent:
        return _call_once_safely(call, classify, attempts, max_wait, on_retry, what, sleep)
    if log.isEnabledFor(logging.DEBUG):
        call = _timed(call, what)
    backoff = wait_random_exponential(multiplier=0.5, max=max_wait)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        failure = classify(exc) if exc else Failure(transient=True)
        if failure.retry_after is not None:
            return min(failure.retry_after, max_wait)
        return backoff(state)

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        failure = classify(exc) if exc else Failure(transient=True)
        log.warning(
            "%s: transient %s, retry %d of %d",
            what,
            failure.kind,
            state.attempt_number,
            attempts - 1,
        )
        if on_retry:
            on_retry(failure)

    retrying = Retrying(
        sleep=sleep or tenacity.nap.sleep,
        retry=retry_if_exception(lambda exc: classify(exc).transient),
        stop=stop_after_attempt(attempts),
        wait=wait,
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(call)


def _timed(call: Callable[[], T], what: str) -> Callable[[], T]:
    """`call`, each attempt's outcome and time logged at DEBUG: what `[logging] level =
    "DEBUG"` is for, every request a run makes (the vendors' clients log nothing of theirs
    through it: hubspot-api-client sets urllib3's logger to WARNING)."""

    def timed() -> T:
        started = time.perf_counter()
        try:
            result = call()
        except Exception as exc:
            took = (time.perf_counter() - started) * 1000
            log.debug("%s: %s after %.0f ms", what, type(exc).__name__, took)
            raise
        log.debug("%s: answered in %.0f ms", what, (time.perf_counter() - started) * 1000)
        return result

    return timed


def _call_once_safely(
    call: Callable[[], T],
    classify: Classifier,
    attempts: int,
    max_wait: float,
    on_retry: Callable[[Failure], None] | None,
    what: str,
    sleep: Callable[[float], None] | None,
) -> T:
    """Retry only what certainly did not land; report the rest as an unknown outcome."""
    try:
        return call_with_retries(
            call,
            lambda exc: _only_unprocessed(classify(exc)),
            attempts=attempts,
            max_wait=max_wait,
            on_retry=on_retry,
            what=what,
            sleep=sleep,
        )
    except OutcomeUnknown:
        raise
    except Exception as exc:
        failure = classify(exc)
        if failure.transient and not failure.unprocessed:
            raise OutcomeUnknown(f"outcome unknown after {failure.kind}: {exc}") from exc
        raise


def _only_unprocessed(failure: Failure) -> Failure:
    if failure.transient and not failure.unprocessed:
        return Failure(transient=False, kind=failure.kind)
    return failure
