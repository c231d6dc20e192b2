"""Request-level errors, answered as Salesforce answers them: a JSON list of
`{"message", "errorCode"}` (with `fields` when it names any), which simple-salesforce reads
as `[0]`."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A request-level failure, answered as Salesforce's JSON error list."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields

    def body(self) -> list[dict[str, Any]]:
        item: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields:
            item["fields"] = self.fields
        return [item]
