"""OAuth apps (issue 11): a public app's refresh token, renewed ahead of expiry, rotated and
kept in the token store, one renewal after an unexpected 401, refusals naming the key.

The simulator's token clock and the client's clock are one fake clock: an hour and more of
30-minute access tokens passes without sleeping. Each test has its own small portal, since
a rotation voids the refresh token every other test would start from.
"""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import requests
from crm_qualify.adapters.hubspot import HubSpotAdapter
from crm_qualify.adapters.hubspot.auth import OAuthApp
from crm_qualify.adapters.hubspot.client import HubSpotClient
from crm_qualify.adapters.hubspot.settings import HubSpotSettings
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector.cli import main
from crm_qualify.connector.contract import AuthError
from crm_qualify.connector.mapping import load_mapping
from crm_qualify.connector.settings import CrmSettings, Settings
from crm_qualify.connector.sync.engine import RunOptions, SyncEngine
from crm_qualify.connector.sync.state import StateStore
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from tests.hubspot.conftest import FAST, FakeClock

SPEC = Path(__file__).resolve().parents[2] / ".." / "shared" / "specs" / "hubspot"
SEED = "sim-refresh"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def portal(clock: FakeClock) -> Iterator[HubSpotSimulator]:
    with HubSpotSimulator(
        contacts=40,
        seed=5,
        custom_properties=True,
        rotate_refresh_tokens=True,
        auth_clock=clock,
        **FAST,
    ) as sim:
        yield sim


def oauth_settings(sim: HubSpotSimulator, store: Path, **options) -> HubSpotSettings:
    values = {
        "auth": "oauth",
        "client_id": "sim-client",
        "client_secret": "sim-secret",
        "refresh_token": SEED,
        "credentials_store": str(store),
        "base_url": sim.base_url,
        "max_attempts": 2,
    } | options
    return HubSpotSettings(**values)


def oauth_adapter(sim: HubSpotSimulator, store: Path, clock: FakeClock, **options):
    settings = oauth_settings(sim, store, **options)
    client = HubSpotClient(settings, clock=clock, sleep=clock.sleep)
    return HubSpotAdapter(settings, load_mapping("hubspot"), client)


def stored_token(store: Path) -> str:
    return json.loads(store.read_text())["refresh_token"]


def refresh(sim: HubSpotSimulator, token: str) -> requests.Response:
    form = {
        "grant_type": "refresh_token",
        "client_id": "sim-client",
        "client_secret": "sim-secret",
        "refresh_token": token,
    }
    return requests.post(f"{sim.base_url}/oauth/v1/token", data=form, timeout=5)


def test_a_public_app_syncs_for_over_an_hour_through_rotated_refresh_tokens(
    portal: HubSpotSimulator, clock: FakeClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store_file = tmp_path / "hubspot-oauth.json"
    adapter = oauth_adapter(portal, store_file, clock)
    state = StateStore(tmp_path / "state.sqlite")
    engine = SyncEngine(adapter, Settings(crm=CrmSettings(adapter="hubspot")), state)
    started, chain = clock.now, []
    contacts = sorted(portal.store.objects["contacts"])
    for step in range(8):  # a run every 10 minutes: 0, 10, ... 70 minutes
        portal.touch(contacts[step], {"jobtitle": f"Title {step}"})
        summary = engine.run(RunOptions())
        assert summary.status in ("ok", "partial"), summary
        chain.append(stored_token(store_file))
        clock.now += 600
    assert clock.now - started > 3600
    credentials = adapter.client.credentials
    assert isinstance(credentials, OAuthApp)
    # renewed ahead of expiry (every 25 minutes of the 30), never by a refused call
    assert portal.auth.refreshes == credentials.refreshes == 3
    assert portal.stats.by_status[401] == 0
    assert credentials.rotations == 3 and len(set(chain)) == 3
    assert stored_token(store_file) == portal.auth.refresh_token != SEED
    assert refresh(portal, SEED).json()["status"] == "BAD_REFRESH_TOKEN"  # the seed is void
    assert stat.S_IMODE(store_file.stat().st_mode) == 0o600

    restarted = oauth_adapter(portal, store_file, clock)  # configured seed still the void one
    assert "crmq_score" in restarted.describe_fields("contacts")
    assert stored_token(store_file) == portal.auth.refresh_token

    secrets = [SEED, "sim-secret", *chain, portal.auth.refresh_token]
    state.close()
    dumped = b"".join(p.read_bytes() for p in tmp_path.glob("state.sqlite*"))
    shown = caplog.text + repr(adapter) + repr(credentials) + repr(adapter.settings)
    for secret in secrets:
        assert secret not in shown and secret.encode() not in dumped


def test_an_unexpected_401_renews_once_then_names_the_setting(
    portal: HubSpotSimulator, clock: FakeClock, tmp_path: Path
) -> None:
    adapter = oauth_adapter(portal, tmp_path / "oauth.json", clock)
    assert adapter.describe_fields("contacts")
    portal.faults.add("expire_token")  # HubSpot revoked the access token early
    assert adapter.describe_fields("contacts")
    assert portal.stats.by_status[401] == 1 and portal.auth.refreshes == 2

    portal.faults.add("401", times=2, path_contains="/crm/v3/properties")  # even when fresh
    with pytest.raises(AuthError) as refused:
        adapter.describe_fields("contacts")
    assert refused.value.setting == "adapters.hubspot.refresh_token"
    assert "EXPIRED_AUTHENTICATION" in str(refused.value)
    assert portal.auth.refreshes == 3, "one renewal for the call, not one per 401"


def test_a_refused_refresh_names_the_key_to_fix(
    portal: HubSpotSimulator, clock: FakeClock, tmp_path: Path
) -> None:
    wrong = oauth_adapter(portal, tmp_path / "a.json", clock, client_secret="not-it")
    with pytest.raises(AuthError) as caught:
        wrong.describe_fields("contacts")
    assert caught.value.setting == "adapters.hubspot.client_secret"
    assert "not-it" not in str(caught.value)

    adapter = oauth_adapter(portal, tmp_path / "b.json", clock)
    assert adapter.describe_fields("contacts")
    token = portal.auth.refresh_token
    assert token is not None
    assert requests.delete(f"{portal.base_url}/oauth/v1/refresh-tokens/{token}", timeout=5).ok
    clock.now += 1800  # the access token runs out; the app was uninstalled meanwhile
    with pytest.raises(AuthError) as revoked:
        adapter.describe_fields("contacts")
    assert revoked.value.setting == "adapters.hubspot.refresh_token"
    assert "BAD_REFRESH_TOKEN" in str(revoked.value) and "re-authorise" in str(revoked.value)


def test_a_revoked_refresh_token_fails_the_run_naming_the_key_not_a_scope(
    portal: HubSpotSimulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refused refresh is no missing scope: the forms and events are not given up for it,
    and the run's error (logged, and kept for `runs`) names the key to fix."""
    monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__CLIENT_SECRET", "sim-secret")
    monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__REFRESH_TOKEN", SEED)
    store_file = tmp_path / "hubspot-oauth.json"
    table = f"auth = 'oauth'\nclient_id = 'sim-client'\ncredentials_store = '{store_file}'\n"
    config = write_config(tmp_path, portal, table)
    assert main(["sync", "--once", "--config", config]) == 0
    revoke = f"{portal.base_url}/oauth/v1/refresh-tokens/{stored_token(store_file)}"
    assert requests.delete(revoke, timeout=5).ok
    capsys.readouterr()

    assert main(["sync", "--once", "--config", config]) == 1
    err = capsys.readouterr().err
    assert "scope" not in err, "the app's scopes are fine"
    assert "BAD_REFRESH_TOKEN" in err and "adapters.hubspot.refresh_token" in err
    assert main(["runs", "--json", "--config", config]) == 0
    last = json.loads(capsys.readouterr().out.splitlines()[0])
    assert last["status"] == "failed"
    assert "adapters.hubspot.refresh_token" in last["errors"][0]


def test_two_processes_share_one_rotating_chain(
    portal: HubSpotSimulator, clock: FakeClock, tmp_path: Path
) -> None:
    """The daemon and a manual `doctor`: each refreshes from the token the other saved."""
    store_file = tmp_path / "oauth.json"
    daemon = oauth_adapter(portal, store_file, clock)
    manual = oauth_adapter(portal, store_file, clock)
    for _ in range(3):
        assert daemon.describe_fields("contacts")
        assert manual.describe_fields("contacts")
        clock.now += 1700
    assert portal.auth.refreshes == 6 and portal.stats.by_status[400] == 0


def test_a_new_configured_refresh_token_starts_a_new_chain(
    portal: HubSpotSimulator, clock: FakeClock, tmp_path: Path
) -> None:
    """After re-authorising the app the admin configures its new token: the stored token of
    the old chain is not used."""
    store_file = tmp_path / "oauth.json"
    assert oauth_adapter(portal, store_file, clock).describe_fields("contacts")
    old_chain = stored_token(store_file)
    portal.auth.revoke_refresh_token(old_chain)
    reinstalled = "sim-refresh-reinstalled"
    with portal.store.lock:  # the portal's new installation
        portal.auth._refresh = reinstalled
    fresh = oauth_adapter(portal, store_file, clock, refresh_token=reinstalled)
    assert fresh.describe_fields("contacts")
    assert stored_token(store_file) not in (old_chain, reinstalled)


def test_private_app_tokens_keep_working(portal: HubSpotSimulator, tmp_path: Path) -> None:
    settings = HubSpotSettings(access_token=portal.token, base_url=portal.base_url)
    client = HubSpotClient(settings)
    assert client.credentials.setting == "adapters.hubspot.access_token"
    assert HubSpotAdapter(settings, load_mapping("hubspot"), client).describe_fields("contacts")
    assert portal.auth.refreshes == 0


# ----- settings: the whole OAuth set, refused by key before any API call ----------------------
def write_config(tmp_path: Path, sim: HubSpotSimulator, table: str) -> str:
    config = tmp_path / "crm-qualify.toml"
    config.write_text(
        f"[crm]\nadapter = 'hubspot'\n[adapters.hubspot]\nbase_url = '{sim.base_url}'\n{table}"
        f"[sync]\nstate_path = '{tmp_path / 'state.sqlite'}'\n"
    )
    return str(config)


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ("auth = 'oauth'\nclient_id = 'sim-client'\n", ["client_secret", "refresh_token"]),
        (
            "auth = 'oauth'\nclient_id = 'sim-client'\nclient_secret = 'sim-secret'\n"
            "refresh_token = 'sim-refresh'\n",
            ["credentials_store"],
        ),
        ("refresh_token = 'sim-refresh'\n", ["access_token", "refresh_token"]),
        (
            "auth = 'oauth'\naccess_token = 'pat-x'\nclient_id = 'c'\nclient_secret = 's'\n"
            "refresh_token = 'r'\ncredentials_store = '/no/such/dir/oauth.json'\n",
            ["access_token", "credentials_store"],
        ),
    ],
)
def test_an_incomplete_oauth_set_stops_the_sync_naming_each_key(
    portal: HubSpotSimulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    table: str,
    named: list[str],
) -> None:
    config = write_config(tmp_path, portal, table)
    assert main(["sync", "--once", "--config", config]) == 2
    err = capsys.readouterr().err
    for key in named:
        assert f"adapters.hubspot.{key}:" in err
    assert "sim-secret" not in err and "pat-x" not in err
    assert sum(portal.stats.by_endpoint.values()) == 0


def test_the_complete_oauth_set_syncs_from_the_command_line(
    portal: HubSpotSimulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__CLIENT_SECRET", "sim-secret")
    monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__REFRESH_TOKEN", SEED)
    table = (
        "auth = 'oauth'\nclient_id = 'sim-client'\n"
        f"credentials_store = '{tmp_path / 'hubspot-oauth.json'}'\n"
    )
    config = write_config(tmp_path, portal, table)
    assert main(["sync", "--once", "--config", config]) == 0
    err = capsys.readouterr().err
    assert ": ok;" in err and SEED not in err and "sim-secret" not in err
    assert portal.stats.by_endpoint["POST /oauth/v1/token"] == 1
    assert stored_token(tmp_path / "hubspot-oauth.json") == portal.auth.refresh_token


OAUTH_SET = "auth = 'oauth'\nclient_id = 'sim-client'\nclient_secret = 's'\nrefresh_token = 'r'\n"


@pytest.mark.parametrize("command", [["config", "check"], ["sync", "--once", "--config"]])
def test_a_store_where_nothing_can_be_written_is_a_configuration_error(
    portal: HubSpotSimulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """/sys refuses new files even to root, for whom access(2) says yes: the store's place is
    tried, as the store itself will use it."""
    config = write_config(tmp_path, portal, OAUTH_SET + "credentials_store = '/sys/o.json'\n")
    assert main([*command, config]) == 2
    err = capsys.readouterr().err
    assert "adapters.hubspot.credentials_store:" in err and "/sys" in err
    assert sum(portal.stats.by_endpoint.values()) == 0


def test_a_store_that_cannot_be_read_is_a_configuration_error(
    portal: HubSpotSimulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store_file = tmp_path / "oauth.json"
    store_file.write_text("{}")
    store_file.chmod(0o600)
    config = write_config(tmp_path, portal, OAUTH_SET + f"credentials_store = '{store_file}'\n")
    real_open = Path.open

    def unreadable(path: Path, *args, **kwargs):  # as for a file another user owns
        if path == store_file:
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(Path, "open", unreadable)
    assert main(["config", "check", config]) == 2
    err = capsys.readouterr().err
    assert "adapters.hubspot.credentials_store:" in err and "cannot read it" in err


def test_a_store_that_becomes_unwritable_fails_the_run_naming_the_key(
    portal: HubSpotSimulator, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writable when the configuration was loaded, not when the token is renewed."""
    adapter = oauth_adapter(portal, tmp_path / "oauth.json", clock)
    monkeypatch.setattr(
        "crm_qualify.connector.ops.token_store.os.open",
        lambda *_args, **_kwargs: (_ for _ in ()).throw(PermissionError(13, "Permission denied")),
    )
    with pytest.raises(AuthError) as caught:
        adapter.describe_fields("contacts")
    assert caught.value.setting == "adapters.hubspot.credentials_store"
    assert "Permission denied" in str(caught.value)
    assert "adapters.hubspot.credentials_store" in str(caught.value)


# ----- the token endpoint against HubSpot's spec --------------------------------------------
def test_the_token_endpoint_answers_as_the_oauth_spec_says(portal: HubSpotSimulator) -> None:
    spec = OpenAPI.from_dict(json.loads((SPEC / "auth-oauth-v1.json").read_text()))
    form = "grant_type=refresh_token&client_id=sim-client&client_secret=sim-secret"
    for token, status in ((SEED, 200), (SEED, 400)):  # rotated: the second use is refused
        body = f"{form}&refresh_token={token}"
        request = MockRequest(
            "https://api.hubapi.com",
            "post",
            "/oauth/v1/token",
            data=body.encode(),
            content_type="application/x-www-form-urlencoded",
        )
        spec.validate_request(request)
        answer = requests.post(
            f"{portal.base_url}/oauth/v1/token",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=5,
        )
        assert answer.status_code == status
        if status == 200:
            response = MockResponse(answer.content, content_type="application/json")
            spec.validate_response(request, response)
    # The spec's error answer is `*/*`, which openapi-core leaves undecoded: check its schema.
    error_schema = json.loads((SPEC / "auth-oauth-v1.json").read_text())["components"]["schemas"]
    jsonschema.validate(
        answer.json(), error_schema["Error"], format_checker=jsonschema.FormatChecker()
    )
    assert answer.json()["status"] == "BAD_REFRESH_TOKEN"
    token = portal.auth.refresh_token
    info = requests.get(f"{portal.base_url}/oauth/v1/refresh-tokens/{token}", timeout=5)
    request = MockRequest("https://api.hubapi.com", "get", f"/oauth/v1/refresh-tokens/{token}")
    spec.validate_response(
        request, MockResponse(info.content, status_code=200, content_type="application/json")
    )
    assert info.json()["client_id"] == "sim-client"
