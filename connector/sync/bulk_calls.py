"""The calls held updates leave in, with a bulk write API (`SyncEngine._held_updates`).

An ingest job takes one object, so a call's records are counted per object: each object's
fill calls of `bulk_batch` while the phase goes on, and at its end the remainders leave
together, packed largest first. A remainder short of `bulk_from` rides along even past
`bulk_batch` (the call leaves whole, `Outgoing.whole`): sent alone, its call would not be
worth a job, and would go in collections where a job takes fewer requests (1,900 Contacts:
10 collections against a job's 4). No object's part of a call exceeds `bulk_batch`.
"""

from __future__ import annotations

from collections.abc import Iterable

Key = tuple[str, str]
"""(object type, record id)."""


def bulk_calls(held: Iterable[Key], size: int, bulk_from: int, *, rest: bool) -> list[list[Key]]:
    """The calls `held` leave in now: each object's full calls of `size`; with `rest` (the
    phase's end), the remainders too, in as few calls of `size` as fit, one short of
    `bulk_from` past it (a call then holds fewer than `size + bulk_from` records)."""
    by_object: dict[str, list[Key]] = {}
    for key in held:
        by_object.setdefault(key[0], []).append(key)
    calls: list[list[Key]] = []
    remainders: list[list[Key]] = []
    for keys in by_object.values():
        whole = len(keys) - len(keys) % size
        calls += [keys[start : start + size] for start in range(0, whole, size)]
        remainders.append(keys[whole:])
    if not rest:
        return calls
    packed: list[Key] = []
    for keys in sorted(remainders, key=len, reverse=True):
        room = size + (bulk_from - 1 if len(keys) < bulk_from else 0)
        if packed and len(packed) + len(keys) > room:
            calls.append(packed)
            packed = []
        packed += keys
    return calls + [packed] if packed else calls
