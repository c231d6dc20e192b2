"""Writes in the simulated org, checked record by record as Salesforce checks them.

sObject Collections create (POST), update (PATCH) and upsert by external id (PATCH
`composite/sobjects/<type>/<field>`), delete, and single-record CRUD. Each record is refused
on its own (`{"success": false, "errors": [{statusCode, message, fields}]}`) for an unknown or
read-only field, a value of the wrong type, a number with more digits before the point than
its field holds (NUMBER_OUTSIDE_VALID_RANGE, see `schema`), a value outside a restricted
picklist, a create without a required field or an update clearing one
(REQUIRED_FIELD_MISSING), a value a unique field already holds on another live record
(DUPLICATE_VALUE), an update of a converted lead or a task naming one as its `WhoId`
(CANNOT_UPDATE_CONVERTED_LEAD), or a refusal a test configured (`refuse`). A record
created without an owner is owned by the user creating it. Upsert answers carry `created`;
the same external id twice in one request fails both records, and an id matching several
records fails with DUPLICATE_EXTERNAL_ID (possible only when the field is not unique).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from . import soql
from .errors import ApiError
from .schema import OBJECTS, label

if TYPE_CHECKING:
    from .org import Org

MAX_RECORDS = 200
RESTRICTED = "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
VALIDATION = "FIELD_CUSTOM_VALIDATION_EXCEPTION"
LOCKED = "unable to obtain exclusive access to this record"
CONVERTED = "CANNOT_UPDATE_CONVERTED_LEAD"
NUMBERS = ("double", "currency", "percent", "int")
Checked = tuple[dict[str, Any] | None, dict[str, Any] | None]
NO_ATTRIBUTES = {
    "statusCode": "JSON_PARSER_ERROR",
    "message": "Nested object for polymorphic foreign key must have an attributes field before"
    " any other fields.",
    "fields": [],
}
"""A Collections record without `attributes.type`, as a real org answers it
(fixtures/salesforce/composite_sobjects_upsert_item_error_200.json)."""


def _error(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
    return {"statusCode": code, "message": message, "fields": fields or []}


def _fold(value: Any) -> Any:
    """A unique text value as Salesforce compares it: case-insensitively."""
    return value.casefold() if isinstance(value, str) else value


def _records(body: Any) -> list[Any]:
    records = body.get("records") if isinstance(body, dict) else None
    if not isinstance(records, list):
        raise ApiError(400, "JSON_PARSER_ERROR", "records is required")
    if len(records) > MAX_RECORDS:
        raise ApiError(
            400,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        )
    return records


def _lock_first(checked: list[Checked], fault: str | None) -> None:
    if fault == "UNABLE_TO_LOCK_ROW" and checked:
        checked[0] = (None, _error("UNABLE_TO_LOCK_ROW", LOCKED))


def _rolled_back(errors: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
    """allOrNone: every record fails, the valid ones with ALL_OR_NONE_OPERATION_ROLLED_BACK."""
    rolled = _error(
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "Record rolled back because not all records were valid and the request was using"
        " AllOrNone header",
    )
    return [{"success": False, "errors": [error or rolled]} for error in errors]


class Writes:
    """The write half of `SalesforceSimulator` (mixed in; uses its `org`, `stats`, `refusals`)."""

    org: Org
    stats: Any
    refusals: dict[tuple[str, str, Any], str]

    def refuse(self, sobject: str, field: str, value: Any, code: str = RESTRICTED) -> None:
        """From now on writing `value` to `sobject.field` fails with `code`: a value removed
        from a restricted picklist, or a validation rule (FIELD_CUSTOM_VALIDATION_EXCEPTION)."""
        if code not in (RESTRICTED, VALIDATION):
            raise ValueError(f"refusals are {RESTRICTED} or {VALIDATION}, not {code}")
        self.refusals[(sobject, field, value)] = code

    # collections -----------------------------------------------------------------------------
    def collection(self, method: str, body: Any, fault: str | None) -> list[dict[str, Any]]:
        """POST (create) or PATCH (update) `composite/sobjects`: results in request order."""
        records = _records(body)
        creating = method == "POST"
        claimed: dict[tuple[str, str, Any], str] = {}
        checked = [self._check(record, creating, claimed) for record in records]
        _lock_first(checked, fault)
        if body.get("allOrNone") and any(error for _, error in checked):
            return _rolled_back([error for _, error in checked])
        results, at = [], datetime.now(UTC)
        for record, (clean, error) in zip(records, checked, strict=True):
            if error or clean is None:
                results.append({"success": False, "errors": [error]})
                continue
            sobject = record["attributes"]["type"]
            saved = self._save(sobject, clean, at, None if creating else record["id"])
            results.append({"id": saved, "success": True, "errors": []})
        self.stats.wrote(sum(1 for r in results if r["success"]))
        return results

    def upsert(self, sobject: str, field: str, body: Any, fault: str | None) -> list[dict]:
        """PATCH `composite/sobjects/<sobject>/<field>`: create or update each record by its
        external id; every result says whether it `created` the record."""
        self._external_field(sobject, field)
        records = _records(body)
        repeated = Counter(
            _fold(r.get(field)) for r in records if isinstance(r, dict) and r.get(field)
        )
        self._planning = {}  # the org does not change while the request is planned
        try:
            planned = [self._plan_upsert(sobject, field, r, repeated) for r in records]
        finally:
            self._planning = None
        checked: list[Checked] = [(clean, error) for clean, _, error in planned]
        _lock_first(checked, fault)
        if body.get("allOrNone") and any(error for _, error in checked):
            return [{**row, "created": False} for row in _rolled_back([e for _, e in checked])]
        results, at = [], datetime.now(UTC)
        for (clean, error), (_, existing, _) in zip(checked, planned, strict=True):
            if error or clean is None:
                results.append({"success": False, "errors": [error], "created": False})
                continue
            saved = self._save(sobject, clean, at, existing)
            results.append({"id": saved, "success": True, "errors": [], "created": not existing})
        self.stats.wrote(sum(1 for r in results if r["success"]))
        return results

    def upsert_one(
        self, sobject: str, field: str, value: str, body: Any
    ) -> tuple[int, dict[str, Any]]:
        """`PATCH sobjects/<type>/<field>/<value>`: 201 when it created the record, 200 when it
        updated the one holding `value`; a request-level 400 / 404 otherwise."""
        self._external_field(sobject, field)
        if not isinstance(body, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "expected a JSON object of field values")
        record = {**body, "attributes": {"type": sobject}, field: value}
        clean, existing, error = self._plan_upsert(sobject, field, record, Counter())
        if error or clean is None:
            raise ApiError(400, error["statusCode"], error["message"], error["fields"])
        saved = self._save(sobject, clean, datetime.now(UTC), existing)
        self.stats.wrote(1)
        answer = {"id": saved, "success": True, "errors": [], "created": not existing}
        return (200 if existing else 201), answer

    def _external_field(self, sobject: str, field: str) -> None:
        if sobject not in OBJECTS:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if not OBJECTS[sobject].get(field, {}).get("externalId"):
            raise ApiError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {field}",
            )

    def _plan_upsert(
        self, sobject: str, field: str, record: Any, repeated: Counter
    ) -> tuple[dict[str, Any] | None, str | None, dict[str, Any] | None]:
        """(checked fields, id of the record to update or None to create, error)."""
        if isinstance(record, dict) and not (record.get("attributes") or {}).get("type"):
            return None, None, NO_ATTRIBUTES
        if not isinstance(record, dict) or record["attributes"]["type"] != sobject:
            return None, None, _error("INVALID_TYPE", f"every record must be a {sobject}")
        if "id" in record or "Id" in record:
            message = "an upsert by external id must not name the record id"
            return None, None, _error("INVALID_FIELD", message, ["Id"])
        value = record.get(field)
        if value in (None, ""):
            return None, None, _error("MISSING_ARGUMENT", f"{field} not specified", [field])
        if repeated[_fold(value)] > 1:
            message = f"Duplicate external id specified: {value}"
            return None, None, _error("DUPLICATE_VALUE", message, [field])
        matches = self._holding(sobject, field, _fold(value))
        if len(matches) > 1:
            message = f"{field}: more than one record found for external id field: {matches}"
            return None, None, _error("DUPLICATE_EXTERNAL_ID", message, [field])
        existing = matches[0] if matches else None
        target = {**record, "id": existing} if existing else record
        clean, error = self._check(target, creating=existing is None)
        return clean, existing, error

    def _save(
        self, sobject: str, fields: dict[str, Any], at: datetime, record_id: str | None
    ) -> str:
        if record_id is None:
            if "OwnerId" in OBJECTS[sobject] and not fields.get("OwnerId"):
                fields = {**fields, "OwnerId": self.org.integration_user}  # the creator owns it
            created = self.org.insert(sobject, fields, at, self.org.integration_user)
            return created["Id"]
        self.org.update(sobject, record_id, fields, at, self.org.integration_user)
        return record_id

    # checks ----------------------------------------------------------------------------------
    def _check(
        self,
        record: Any,
        creating: bool,
        claimed: dict[tuple[str, str, Any], str] | None = None,
    ) -> Checked:
        """(fields to save, None) or (None, the record's error). `claimed` holds the unique
        values earlier records of the same request took."""
        if not isinstance(record, dict):
            return None, _error("JSON_PARSER_ERROR", "each record must be a JSON object")
        sobject = (record.get("attributes") or {}).get("type")
        if not sobject:
            return None, NO_ATTRIBUTES
        if sobject not in OBJECTS:
            return None, _error("INVALID_TYPE", f"sObject type '{sobject}' is not supported")
        if not creating:
            hit = self.org.find(str(record.get("id") or ""))
            if hit is None or hit[0] != sobject:
                return None, _error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
            if hit[1]["IsDeleted"]:  # in the recycle bin: deleted, or merged away
                return None, _error("ENTITY_IS_DELETED", "entity is deleted")
            if hit[1].get("IsConverted"):
                return None, _error(CONVERTED, "cannot reference converted lead")
        clean: dict[str, Any] = {}
        for name, value in record.items():
            if name in ("attributes", "id"):
                continue
            problem = _field_problem(sobject, name, value)
            if problem:
                return None, problem
            if value is None and OBJECTS[sobject][name]["type"] == "boolean":
                value = False  # a checkbox is never null: clearing it unchecks it
            clean[name] = value
        problem = (
            _missing(sobject, clean, creating)
            or self._reference_problem(sobject, clean, creating)
            or self._refused(sobject, clean)
            or self._duplicate(sobject, clean, record.get("id"), claimed)
        )
        return (None, problem) if problem else (clean, None)

    def _reference_problem(
        self, sobject: str, clean: dict[str, Any], creating: bool
    ) -> dict[str, Any] | None:
        """A task's `WhoId`: a record that exists, not in the recycle bin (on create), and
        never a converted lead, on create or update: once converted, only the Contact and
        Account it became may be referenced (Salesforce help 000384333)."""
        who = clean.get("WhoId")
        if not (sobject == "Task" and who):
            return None
        found = self.org.find(str(who))
        if found and found[1].get("IsConverted"):
            return _error(CONVERTED, "cannot reference converted lead", ["WhoId"])
        if not creating:
            return None
        if not found:
            return _error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["WhoId"])
        if found[1].get("IsDeleted"):  # a lookup to a record in the recycle bin
            return _error("ENTITY_IS_DELETED", "entity is deleted", ["WhoId"])
        return None

    def _refused(self, sobject: str, clean: dict[str, Any]) -> dict[str, Any] | None:
        for name, value in clean.items():
            code = self.refusals.get((sobject, name, value)) if _hashable(value) else None
            if code == RESTRICTED:
                message = f"{name}: bad value for restricted picklist field: {value}"
                return _error(code, message, [name])
            if code == VALIDATION:
                return _error(code, f"{value} is not allowed here", [name])
        return None

    def _duplicate(
        self,
        sobject: str,
        clean: dict[str, Any],
        own_id: Any,
        claimed: dict[tuple[str, str, Any], str] | None,
    ) -> dict[str, Any] | None:
        for name, value in clean.items():
            if not OBJECTS[sobject][name].get("unique") or value in (None, ""):
                continue
            folded = _fold(value)
            holder = (claimed or {}).get((sobject, name, folded)) or next(
                (i for i in self._holding(sobject, name, folded) if i != own_id), None
            )
            if holder:
                return _error(
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {name} duplicates value on record with id: {holder}",
                )
            if claimed is not None:
                claimed[(sobject, name, folded)] = own_id or "(an earlier record of this request)"
        return None

    def _holding(self, sobject: str, name: str, folded: Any) -> list[str]:
        """Ids of the live records whose `name` is `folded` (compared case-insensitively);
        while an upsert request is planned, from an index built once for the request."""
        index: dict[tuple[str, str], dict[Any, list[str]]] | None = getattr(self, "_planning", None)
        if index is None or not _hashable(folded):
            return [r["Id"] for r in self.org.live(sobject) if _fold(r.get(name)) == folded]
        if (sobject, name) not in index:
            built: dict[Any, list[str]] = {}
            for record in self.org.live(sobject):
                value = _fold(record.get(name))
                if _hashable(value):
                    built.setdefault(value, []).append(record["Id"])
            index[(sobject, name)] = built
        return index[(sobject, name)].get(folded, [])

    # single records --------------------------------------------------------------------------
    def create_one(self, sobject: str, body: dict[str, Any]) -> dict[str, Any]:
        """`POST sobjects/<type>`: 201 with the id, or a request-level 400 naming the field."""
        clean, error = self._check({**body, "attributes": {"type": sobject}}, creating=True)
        if error or clean is None:
            raise ApiError(400, error["statusCode"], error["message"], error["fields"])
        saved = self._save(sobject, clean, datetime.now(UTC), None)
        self.stats.wrote(1)
        return {"id": saved, "success": True, "errors": []}

    def update_one(self, sobject: str, record_id: str, body: dict[str, Any]) -> None:
        """`PATCH sobjects/<type>/<id>`: 204, 404 for an unknown id, 400 for a bad field."""
        self.live_record(sobject, record_id)
        record = {**body, "attributes": {"type": sobject}, "id": record_id}
        clean, error = self._check(record, creating=False)
        if error or clean is None:
            raise ApiError(400, error["statusCode"], error["message"], error["fields"])
        self.org.update(sobject, record_id, clean, datetime.now(UTC), self.org.integration_user)
        self.stats.wrote(1)

    def delete_one(self, sobject: str, record_id: str) -> None:
        self.live_record(sobject, record_id)
        self.org.delete(sobject, record_id, datetime.now(UTC), self.org.integration_user)
        self.stats.wrote(1)

    def live_record(self, sobject: str, record_id: str) -> dict[str, Any]:
        """The record sObject Rows (GET, PATCH, DELETE) may touch: one in the recycle bin is
        filtered out of them as Salesforce filters it, 404 ENTITY_IS_DELETED."""
        hit = self.org.find(record_id)
        if not hit or hit[0] != sobject:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if hit[1]["IsDeleted"]:
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
        return hit[1]

    def delete(self, ids: list[str], fault: str | None) -> list[dict[str, Any]]:
        if len(ids) > MAX_RECORDS:
            raise ApiError(400, "EXCEEDED_ID_LIMIT", "cannot delete more than 200 records")
        results = []
        if fault == "UNABLE_TO_LOCK_ROW" and ids:
            locked = _error(
                "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record"
            )
            results.append({"id": ids[0], "success": False, "errors": [locked]})
            ids = ids[1:]
        for record_id in ids:
            hit = self.org.find(record_id)
            if hit is None or hit[1]["IsDeleted"]:
                error = _error("ENTITY_IS_DELETED", "entity is deleted")
                results.append({"id": record_id, "success": False, "errors": [error]})
                continue
            self.org.delete(hit[0], record_id, datetime.now(UTC), self.org.integration_user)
            results.append({"id": record_id, "success": True, "errors": []})
        self.stats.wrote(sum(1 for r in results if r["success"]))
        return results


def _hashable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None


def _missing(sobject: str, clean: dict[str, Any], creating: bool) -> dict[str, Any] | None:
    """REQUIRED_FIELD_MISSING for a create that leaves a required field empty with no default to
    fill it, or an update that clears one; Salesforce stores an empty string as null."""
    missing = [
        name
        for name, spec in OBJECTS[sobject].items()
        if spec.get("required")
        and (creating or name in clean)
        and clean.get(name, spec.get("default")) in (None, "")
    ]
    if not missing:
        return None
    message = f"Required fields are missing: [{', '.join(missing)}]"
    return _error("REQUIRED_FIELD_MISSING", message, missing)


def _field_problem(sobject: str, name: str, value: Any) -> dict[str, Any] | None:
    spec = OBJECTS[sobject].get(name)
    if spec is None:
        return _error(
            "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}", [name]
        )
    if not spec["updateable"]:
        return _error(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            f"Unable to create/update fields: {name}. Please check the security settings"
            " of this field and verify that it is read/write for your profile.",
            [name],
        )
    return _value_problem(name, spec, value)


def _value_problem(name: str, spec: dict[str, Any], value: Any) -> dict[str, Any] | None:
    kind = spec["type"]
    wrong = _error(
        "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{name}: value not of required type: {value}", [name]
    )
    if value is None:
        return None
    if kind == "picklist" and spec.get("picklist") and value not in spec["picklist"]:
        message = f"{name}: bad value for restricted picklist field: {value}"
        return _error(RESTRICTED, message, [name])
    if kind in NUMBERS and (isinstance(value, bool) or not isinstance(value, int | float)):
        return wrong
    if kind in NUMBERS and not _fits(spec, value):
        message = f"{label(name, spec)}: value outside of valid range on numeric field: {value}"
        return _error("NUMBER_OUTSIDE_VALID_RANGE", message, [name])
    if kind == "boolean" and not isinstance(value, bool):
        return wrong
    if kind in ("string", "textarea") and len(str(value)) > spec.get("length", 255):
        return _error("STRING_TOO_LONG", f"{name}: data value too large", [name])
    if kind in ("date", "datetime"):
        try:
            soql.comparable(value) if kind == "datetime" else date.fromisoformat(value)
        except (TypeError, ValueError):
            return _error(
                "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{name}: value not of required type", [name]
            )
    return None


def _fits(spec: dict[str, Any], value: float) -> bool:
    """Whether a number has no more digits before the point than its field holds: `digits` for
    an int, `precision - scale` otherwise (more decimals than the scale are not refused).

    The error's wording is a real org's, as a Bulk API job reported it (Salesforce developer
    forums, "Why does one get NUMBER_OUTSIDE_VALID_RANGE errors?", a Number(10, 8) field):
    `NUMBER_OUTSIDE_VALID_RANGE:Normalized Score: value outside of valid range on numeric
    field: 100.0:normalized_score__c --`."""
    if "digits" in spec:
        room = spec["digits"]
    elif "precision" in spec:
        room = spec["precision"] - spec.get("scale", 0)
    else:
        return True
    return abs(value) < 10**room
