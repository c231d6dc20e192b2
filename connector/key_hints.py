"""What an unknown configuration key most likely meant: a close spelling in its own table, or
the table that has a key of that name.

pydantic names an unknown key ("Extra inputs are not permitted") but not the key the person
wanted, and a key in the wrong table reads as a typo: `interval_minutes` under `[sync]`
instead of `[schedule]` stopped the program with nothing to go on.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel


def close_match(name: str, known: list[str]) -> str | None:
    """The known name `name` nearly spells (a typo, a letter's case), or None."""
    by_lower = {candidate.lower(): candidate for candidate in known}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
    return by_lower[close[0]] if close else None


def unknown_key_hint(model: type[BaseModel], loc: Sequence[int | str], prefix: str = "") -> str:
    """'; did you mean sync.reconcile_every_days?' or '; it is a key of [schedule]' for the
    unknown key at `loc` (its path from `model`, as pydantic gives it; `prefix`: where
    `model`'s table is, `adapters.hubspot.`), or '' when nothing is close or the table is
    not a model's."""
    *path, name = loc
    section = _model_at(model, path)
    if section is None:
        return ""
    close = close_match(str(name), list(section.model_fields))
    if close is not None:
        return f"; did you mean {prefix}{'.'.join(map(str, [*path, close]))}?"
    homes = [
        top
        for top in model.model_fields
        if [top] != path
        and (table := _model_at(model, [top])) is not None
        and str(name) in table.model_fields
    ]
    return f"; it is a key of [{prefix}{homes[0]}]" if homes else ""


def _model_at(model: type[BaseModel], path: Sequence[int | str]) -> type[BaseModel] | None:
    """The model of the table at `path` below `model`: through nested models, the values of
    a dict and the items of a list (whose key or index the path names, as pydantic's `loc`
    does); None where the path leaves the models."""
    current: Any = model
    parts = list(path)
    while True:
        current = _unwrapped(current)
        origin = get_origin(current)
        if origin in (dict, Mapping, list, tuple, Sequence):
            if not parts:
                return None
            parts.pop(0)
            args = get_args(current)
            current = args[-1] if origin in (dict, Mapping) else args[0]
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        if not parts:
            return current
        field = current.model_fields.get(str(parts.pop(0)))
        if field is None:
            return None
        current = field.annotation


def _unwrapped(annotation: Any) -> Any:
    """The type within Annotated, and the first one but None within Optional or a union."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrapped(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        kept = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _unwrapped(kept[0]) if kept else annotation
    return annotation
