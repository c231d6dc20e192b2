"""`SalesforceSimulator`: a seeded Salesforce org served over TLS for demos, tests and
benchmarks. The concerns live in their own modules: logins and sessions (`auth.py`), SOQL and
its paging (`paging.py`, `soql.py`, `results.py`), writes (`writes.py`), faults (`faults.py`),
request accounting (`stats.py`), the UI side of the org (`scenarios.py`); this class holds the
org, its credentials and the server, and is what tests and benchmarks drive."""

from __future__ import annotations

import datetime as dt
import random
import ssl
import tempfile
import threading
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from . import merge, scenarios
from .auth import Auth
from .bulk import Bulk
from .faults import Faults
from .ids import ORG_ID
from .org import Org
from .org import seed as seed_org
from .paging import Queries
from .seed_outcomes import seed as seed_outcomes
from .seed_people import seed as seed_people
from .server import ApiError, make_server
from .stats import Endpoints, Stats, endpoint
from .writes import Writes

__all__ = ["Endpoints", "SalesforceSimulator", "Stats", "endpoint"]


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
        outcomes: int = 0,
        duplicates: bool = False,
    ) -> None:
        self.latency_ms, self.daily_limit, self.api_version = latency_ms, daily_limit, api_version
        self.username, self.password, self.security_token = username, password, security_token
        self.client_id, self.client_secret = client_id, client_secret
        self.refresh_token, self.session_ttl = refresh_token, session_ttl
        self.org = Org()
        seed_org(self.org, records, random.Random(seed), anchor or datetime.now(UTC).date())
        if outcomes:  # Contacts whose deals follow a known model (calibration tests)
            seed_outcomes(self.org, seed, anchor or datetime.now(UTC).date(), outcomes)
        self.seeded_people = (  # labelled duplicates (adapters/seeded_people.py): label -> key
            seed_people(self.org, anchor or datetime.now(UTC).date()) if duplicates else {}
        )
        self.rng = random.Random(seed * 31 + 7)
        self.stats = Stats()
        self.faults = Faults(self, fault_rate, seed)
        self.bulk = Bulk(self)
        """Bulk API 2.0 jobs (`bulk.py`): `bulk.delay`, `bulk.clock`, `bulk.jobs`."""
        self.refusals: dict[tuple[str, str, Any], str] = {}
        self.page_size = 2000
        """Rows per query page without a batchSize header (Salesforce's 2,000; lower it to make
        a small org page through nextRecordsUrl)."""
        self.used = 0
        self._usage_lock = threading.Lock()
        self._request = threading.local()
        self.auth = Auth(self)
        self.queries = Queries(self)
        self.session_id = self.auth.issue()
        self._ca = trustme.CA()
        certificate = self._ca.issue_cert("127.0.0.1", "localhost")
        self.ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate.configure_cert(self.ssl_context)
        self._folder = tempfile.TemporaryDirectory(prefix="sfsim-")
        self.ca_bundle_path = str(Path(self._folder.name) / "ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_bundle_path)
        self._jwt_key_path: str | None = None
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

    # logins ----------------------------------------------------------------------------------
    @property
    def jwt_key_path(self) -> str:
        """A private key (PEM) whose certificate the connected app holds: the JWT bearer flow
        logs in with it (`private_key_file`). Made on first use (RSA is slow to generate)."""
        if self._jwt_key_path is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.auth.register_certificate(_certificate(key))
            path = Path(self._folder.name) / "jwt-key.pem"
            path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            self._jwt_key_path = str(path)
        return self._jwt_key_path

    def adapter_options(self, auth: str = "password") -> dict[str, Any]:
        """The `[adapters.salesforce]` options that point the adapter at this org, for one
        login flow: password, client_credentials, refresh_token or jwt."""
        options: dict[str, Any] = {
            "auth": auth,
            "login_url": self.login_url,
            "ca_bundle": self.ca_bundle_path,
            "allowed_domains": ["127.0.0.1", "localhost"],
            "client_id": self.client_id,
        }
        if auth == "jwt":
            return {**options, "username": self.username, "private_key_file": self.jwt_key_path}
        options["client_secret"] = self.client_secret
        if auth == "password":
            options |= {"username": self.username, "password": self.password,
                        "security_token": self.security_token}  # fmt: skip
        elif auth == "refresh_token":
            options["refresh_token"] = self.refresh_token
        return options

    def token_endpoint(
        self, form: dict[str, list[str]], instance_url: str | None = None, authorization: str = ""
    ) -> tuple[int, Any]:
        """OAuth token grants (see `auth.py`); `instance_url` overrides the org's own in the
        answer (a fault), `authorization` is the request's Authorization header (Basic)."""
        return self.auth.token(form, authorization, instance_url)

    def identity_url(self) -> str:
        """`https://<login host>/id/<orgId>/<userId>`: the `id` of every token answer, naming
        the API user (the only user sessions are issued for)."""
        return f"{self.login_url}/id/{ORG_ID}/{self.org.integration_user}"

    def identity(self, header: str, path: str) -> tuple[int, Any]:
        return self.auth.identity(header, path)

    def soap_login(self, body: str) -> tuple[int, str]:
        return self.auth.soap_login(body)

    def soap(self, body: str) -> tuple[int, str]:
        """The partner API's calls served over SOAP: `login()`, and `merge()` (merge.py)."""
        return merge.call(self, body) if merge.is_merge(body) else self.soap_login(body)

    def authenticate(self, header: str) -> None:
        self.auth.authenticate(header)

    def expire_sessions(self) -> None:
        self.auth.expire_all()

    # the daily allocation --------------------------------------------------------------------
    def count_api_call(self) -> str:
        with self._usage_lock:
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
        return self.queries.render(sobject, record, fields)

    def query(self, text: str, options: str | None, deleted: bool = False) -> dict[str, Any]:
        return self.queries.query(text, options, deleted)

    def query_more(self, token: str) -> dict[str, Any]:
        return self.queries.more(token)

    def by_external_id(self, sobject: str, field: str, value: str) -> tuple[int, Any]:
        return self.queries.by_external_id(sobject, field, value)

    def _find(self, record_id: Any) -> tuple[str, dict[str, Any]] | None:
        return self.org.find(record_id) if isinstance(record_id, str) else None

    # the UI side of the org ------------------------------------------------------------------
    def touch(self, record_id: str, fields: dict[str, Any]) -> None:
        """A person's edit in the UI (any field, even read-only ones), stamped now."""
        scenarios.touch(self.org, record_id, fields)

    def simulate_engagement(self, n: int) -> list[str]:
        """A day of new engagement on `n` people: campaign responses, replies, meetings."""
        return scenarios.simulate_engagement(self.org, self.rng, n)

    def merge(
        self, master_id: str, victim_ids: list[str], fields: dict[str, Any] | None = None
    ) -> merge.MergeResult:
        """A person merges duplicates in the UI (merge.py): the victims are deleted with
        `MasterRecordId` set, their activities move to the master."""
        with self.org.lock:
            return merge.merge(self.org, master_id, victim_ids, datetime.now(UTC), fields=fields)

    def convert_lead(
        self, lead_id: str, *, account_id: str | None = None, opportunity: bool | str = False
    ) -> dict[str, Any]:
        """A salesperson converts a lead (see `conversion.py`); returns the converted lead."""
        return scenarios.convert_lead(
            self.org, lead_id, account_id=account_id, opportunity=opportunity
        )


def _certificate(key: rsa.RSAPrivateKey) -> bytes:
    """A self-signed certificate (PEM) for `key`, as an admin uploads to a connected app."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crm-qualify simulator")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)
