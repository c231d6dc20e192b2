"""A local Salesforce org over TLS: OAuth, SOQL queries, sObject Collections, describe, limits."""

from __future__ import annotations

import random
import re
import ssl
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import trustme

from . import soap, soql
from .faults import Faults
from .org import Org, iso
from .org import seed as seed_org
from .results import Renderer, child_cap, long_text_fields, page_end, shaped
from .schema import OBJECTS
from .server import IDENTITY, ORG_ID, ApiError, locator, make_server, new_session
from .writes import Writes


def endpoint(method: str, path: str) -> str:
    """`PATCH composite/sobjects`: the version prefix, ids and query locators left out."""
    resource = re.sub(r"^/services/data/v[\d.]+/", "", path).rstrip("/")
    resource = re.sub(r"^query/.*", "query/more", resource)
    resource = re.sub(r"^sobjects/(\w+)/\w{15,18}$", r"sobjects/\1/{id}", resource)
    return f"{method} {resource}"


class Endpoints(Counter[str]):
    """Counts under short keys; a full-path key ("GET /services/data/v59.0/limits") reads too."""

    def __missing__(self, key: str) -> int:
        method, _, path = key.partition(" ")
        short = endpoint(method, path)
        return self[short] if short != key and short in self else 0


class Stats:
    """Requests by endpoint and status, and records written (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.by_endpoint: Endpoints = Endpoints()
            self.by_status: Counter[int] = Counter()
            self.writes = 0

    def count(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.by_endpoint[endpoint(method, path)] += 1
            self.by_status[status] += 1

    def wrote(self, records: int) -> None:
        with self._lock:
            self.writes += records


class SalesforceSimulator(Writes):
    def __init__(
        self,
        records: int = 2000,
        seed: int = 1,
        latency_ms: float = 0,
        fault_rate: float = 0.0,
        daily_limit: int = 100_000,
        api_version: str = "59.0",
        username: str = "admin@sim.example",
        password: str = "sim-password",
        security_token: str = "sim-security-token",
        client_id: str = "sim-consumer-key",
        client_secret: str = "sim-consumer-secret",
        refresh_token: str = "sim-refresh-token",
        session_ttl: float = 7200.0,
        anchor: date | None = None,
    ) -> None:
        self.latency_ms, self.daily_limit, self.api_version = latency_ms, daily_limit, api_version
        self.username, self.password, self.security_token = username, password, security_token
        self.client_id, self.client_secret = client_id, client_secret
        self.refresh_token, self.session_ttl = refresh_token, session_ttl
        self.org = Org()
        seed_day = anchor or datetime.now(UTC).date()
        seed_org(self.org, records, random.Random(seed), seed_day)
        self.rng = random.Random(seed * 31 + 7)
        self.stats = Stats()
        self.faults = Faults(self, fault_rate, seed)
        self.refusals: dict[tuple[str, str, Any], str] = {}
        self.page_size = 2000
        """Rows per query page without a batchSize header (Salesforce's 2,000; lower it to make
        a small org page through nextRecordsUrl)."""
        self.used = 0
        self._sessions: dict[str, float] = {}
        self._locators: dict[str, tuple[list[dict[str, Any]], list[str], int, bool]] = {}
        """Query locators: the rows (a snapshot), the child locators its last page opened,
        the batch size, and whether rows carry child sets."""
        self._lock = threading.Lock()
        self._request = threading.local()
        self.session_id = self._issue()
        self._ca = trustme.CA()
        certificate = self._ca.issue_cert("127.0.0.1", "localhost")
        self.ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate.configure_cert(self.ssl_context)
        self._folder = tempfile.TemporaryDirectory(prefix="sfsim-")
        self.ca_bundle_path = str(Path(self._folder.name) / "ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_bundle_path)
        self._server: Any = None
        self.instance_url = self.login_url = ""

    @property
    def store(self) -> Org:
        """The org's records (`store.records[type][id]`), named as the HubSpot simulator's."""
        return self.org

    # lifecycle ------------------------------------------------------------------------------
    def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        self._server = make_server(self, host, port)
        self.instance_url = self.login_url = f"https://{host}:{self._server.server_address[1]}"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self.instance_url

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._folder.cleanup()

    def __enter__(self) -> SalesforceSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # auth and limits -------------------------------------------------------------------------
    def _issue(self) -> str:
        token = new_session()
        with self._lock:
            self._sessions[token] = time.time() + self.session_ttl
        return token

    def expire_sessions(self) -> None:
        with self._lock:
            self._sessions.clear()

    def adapter_options(self) -> dict[str, Any]:
        """The `[adapters.salesforce]` options that point the adapter at this org."""
        return {
            "login_url": self.login_url,
            "ca_bundle": self.ca_bundle_path,
            "allowed_domains": ["127.0.0.1", "localhost"],
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "username": self.username,
            "password": self.password,
            "security_token": self.security_token,
        }

    def token_endpoint(
        self, form: dict[str, list[str]], instance_url: str | None = None
    ) -> tuple[int, Any]:
        """OAuth token grants; `instance_url` overrides the org's own in the answer (a fault)."""
        value = {k: v[0] for k, v in form.items()}
        grant = value.get("grant_type")
        client_ok = (value.get("client_id"), value.get("client_secret")) == (
            self.client_id,
            self.client_secret,
        )
        ok = client_ok and (
            (
                grant == "password"
                and value.get("username") == self.username
                and value.get("password") == self.password + self.security_token
            )
            or grant == "client_credentials"
            or (grant == "refresh_token" and value.get("refresh_token") == self.refresh_token)
        )
        if not ok:
            return 400, {"error": "invalid_grant", "error_description": "authentication failure"}
        return 200, {
            "access_token": self._issue(),
            "instance_url": instance_url or self.instance_url,
            "id": self.identity_url(),
            "token_type": "Bearer",
            "issued_at": str(int(time.time() * 1000)),
            "signature": "c2ltdWxhdGVk",
        }

    def identity_url(self) -> str:
        """`https://<login host>/id/<orgId>/<userId>`: the `id` of every token answer, naming
        the API user (the only user sessions are issued for)."""
        return f"{self.login_url}/id/{ORG_ID}/{self.org.integration_user}"

    def identity(self, header: str, path: str) -> tuple[int, Any]:
        """GET the identity URL or OpenID Connect `/services/oauth2/userinfo`: who the session
        is. A session that is not valid, or another user's identity URL, answers 403
        `Bad_OAuth_Token` (plain text), as Salesforce does."""
        user = self.org.records["User"][self.org.integration_user]
        found = IDENTITY.match(path)
        try:
            self.authenticate(header)
        except ApiError:
            return 403, "Bad_OAuth_Token"
        if found and (found.group(1)[:15], found.group(2)[:15]) != (ORG_ID[:15], user["Id"][:15]):
            return 403, "Bad_OAuth_Token"
        who = {
            "user_id": user["Id"], "organization_id": ORG_ID, "email": user["Email"],
            "active": True, "user_type": "STANDARD",
        }  # fmt: skip
        if found:
            return 200, {
                "id": self.identity_url(), "asserted_user": True, **who,
                "username": self.username, "display_name": user["Name"],
                "nick_name": user["Name"].split()[0],
            }  # fmt: skip
        return 200, {
            "sub": self.identity_url(), **who, "preferred_username": self.username,
            "name": user["Name"], "nickname": user["Name"].split()[0], "email_verified": True,
        }  # fmt: skip

    def soap_login(self, body: str) -> tuple[int, str]:
        """Partner API `login()`: the password carries the security token appended."""
        if soap.credentials(body) != (self.username, self.password + self.security_token):
            return 500, soap.login_fault()
        user = self.org.integration_user
        return 200, soap.login_response(self._issue(), self.instance_url, self.api_version, user)

    def authenticate(self, header: str) -> None:
        token = header.split(" ", 1)[1] if " " in header else ""
        with self._lock:
            expiry = self._sessions.get(token)
        if expiry is None or expiry < time.time():
            raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")

    def count_api_call(self) -> str:
        with self._lock:
            self.used += 1
            used = self.used
        if used > self.daily_limit:
            raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        return f"api-usage={used}/{self.daily_limit}"

    @property
    def remaining(self) -> int:
        return max(0, self.daily_limit - self.used)

    # queries ---------------------------------------------------------------------------------
    def answering(self, version: str) -> None:
        """The API version of the request this thread answers: the URLs it gets back
        (`attributes.url`, `nextRecordsUrl`) carry that version, as Salesforce's do."""
        self._request.version = version

    @property
    def version(self) -> str:
        return getattr(self._request, "version", None) or self.api_version

    def render(self, sobject: str, record: dict[str, Any], fields: list[str] | None) -> dict:
        url = f"/services/data/v{self.version}/sobjects/{sobject}/{record['Id']}"
        names = fields or list(OBJECTS[sobject])
        return {"attributes": {"type": sobject, "url": url}, **{n: record.get(n) for n in names}}

    def query(self, text: str, options: str | None, deleted: bool = False) -> dict[str, Any]:
        """`query`, or `queryAll` (`deleted`: soft-deleted records, children included, are
        rows too). Paging with subqueries follows `results.py`."""
        try:
            parsed = soql.parse(text, OBJECTS.get, float(self.version))
        except soql.SoqlError as exc:
            raise ApiError(400, exc.code, str(exc)) from None

        def pool(sobject: str) -> Iterable[dict[str, Any]]:
            return self.org.records[sobject].values() if deleted else self.org.live(sobject)

        rows = soql.run(parsed, list(pool(parsed.sobject)))
        size = self.page_size
        if options and (found := re.search(r"batchSize=(\d+)", options)):
            size = min(2000, max(200, int(found.group(1))))
        if long_text_fields(parsed) >= 2:
            size = min(size, 200)
        renderer = Renderer(parsed, pool, self._find, self.version)
        prepared = [renderer.row(parsed, r) for r in rows]
        return self._page(prepared, 0, size, nested=bool(parsed.subqueries()))

    def _find(self, record_id: Any) -> tuple[str, dict[str, Any]] | None:
        return self.org.find(record_id) if isinstance(record_id, str) else None

    def _page(
        self, rows: list[dict], offset: int, size: int, key: str | None = None, nested: bool = False
    ) -> dict:
        """The page of `rows` from `offset`; paging a locator on invalidates the child
        locators its previous page opened."""
        end = page_end(rows, offset, size, nested)
        opened: list[str] = []

        def locate(children: list[dict], start: int) -> str:
            child = locator()
            with self._lock:
                self._locators[child] = (children, [], size, True)
            opened.append(child)
            return f"/services/data/v{self.version}/query/{child}-{start}"

        cap = child_cap(size)
        page = [shaped(r, cap, locate) for r in rows[offset:end]] if nested else rows[offset:end]
        body: dict[str, Any] = {"totalSize": len(rows), "done": end >= len(rows)}
        if not body["done"]:
            key = key or locator()
            body["nextRecordsUrl"] = f"/services/data/v{self.version}/query/{key}-{end}"
        if key is not None:
            with self._lock:
                for stale in self._locators.get(key, ((), []))[1]:
                    self._locators.pop(stale, None)
                self._locators[key] = (rows, opened, size, nested)
        body["records"] = page
        return body

    def by_external_id(self, sobject: str, field: str, value: str) -> tuple[int, Any]:
        """`GET sobjects/<type>/<field>/<value>`: the record; 300 with their URLs when several
        hold the value (a field that is not unique), 404 when none does."""
        self._external_field(sobject, field)
        folded = value.casefold()
        hits = [
            r
            for r in self.org.live(sobject)
            if isinstance(r.get(field), str) and r[field].casefold() == folded
        ]
        if not hits:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if len(hits) > 1:
            base = f"/services/data/v{self.version}/sobjects/{sobject}"
            return 300, [f"{base}/{r['Id']}" for r in hits]
        return 200, self.render(sobject, hits[0], None)

    def query_more(self, token: str) -> dict[str, Any]:
        key, _, offset = token.rpartition("-")
        with self._lock:
            found = self._locators.get(key)
        if not found or not offset.isdigit():
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        rows, _, size, nested = found
        return self._page(rows, int(offset), size, key, nested)

    # scenarios -------------------------------------------------------------------------------
    def touch(self, record_id: str, fields: dict[str, Any]) -> None:
        """A person's edit in the UI (any field, even read-only ones), stamped now."""
        with self.org.lock:
            sobject, _ = self.org.find(record_id) or (None, None)
            if sobject is None:
                raise KeyError(record_id)
            self.org.update(sobject, record_id, fields, datetime.now(UTC))

    def simulate_engagement(self, n: int) -> list[str]:
        """A day of new engagement on `n` people: campaign responses, replies, meetings."""
        with self.org.lock:
            people = [
                r["Id"]
                for s in ("Lead", "Contact")
                for r in self.org.live(s)
                if not r.get("IsConverted")
            ]
            chosen = sorted(self.rng.sample(people, min(n, len(people))))
            campaigns = list(self.org.live("Campaign"))
            at = datetime.now(UTC)
            for person_id in chosen:
                roll = self.rng.random()
                if roll < 0.5:
                    campaign = self.rng.choice(campaigns)
                    member = {
                        "CampaignId": campaign["Id"],
                        "Status": "Responded",
                        "HasResponded": True,
                        "FirstRespondedDate": at.date().isoformat(),
                    }
                    member["LeadId" if person_id.startswith("00Q") else "ContactId"] = person_id
                    self.org.insert("CampaignMember", member, at - timedelta(minutes=5))
                elif roll < 0.85:
                    self.org.insert(
                        "Task",
                        {
                            "WhoId": person_id,
                            "Subject": "Re: follow-up",
                            "TaskSubtype": "Email",
                            "Status": "Completed",
                            "IsClosed": True,
                            "ActivityDate": at.date().isoformat(),
                        },
                        at - timedelta(minutes=5),
                    )
                else:
                    self.org.insert(
                        "Event",
                        {
                            "WhoId": person_id,
                            "Subject": "Demo meeting",
                            "ActivityDateTime": iso(at),
                            "Type": "Meeting",
                        },
                        at,
                    )
                sobject = "Lead" if person_id.startswith("00Q") else "Contact"
                self.org.update(sobject, person_id, {}, at)
        return chosen
