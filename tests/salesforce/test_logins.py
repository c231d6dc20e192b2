"""Logging in as a daemon does: the JWT bearer flow with a private key from a file (the
simulator holds its certificate and checks signature, iss, sub, aud and exp), client
credentials sent as HTTP Basic or in the form, the token answer's signature, and settings
that name the missing or broken option before any request."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterator

import jwt
import pytest
import requests
from crm_qualify.adapters.salesforce.auth import assertion, audience
from crm_qualify.adapters.salesforce.client import SalesforceClient
from crm_qualify.adapters.salesforce.settings import SalesforceSettings
from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator
from crm_qualify.connector.contract import AuthError
from crm_qualify.connector.settings import describe_validation_error, resolve_secret_files
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@pytest.fixture(scope="module")
def sim() -> Iterator[SalesforceSimulator]:
    with SalesforceSimulator(records=20, seed=2) as simulator:
        yield simulator


def settings(sim: SalesforceSimulator, auth: str, **options) -> SalesforceSettings:
    found = resolve_secret_files(sim.adapter_options(auth), "adapters.salesforce.")
    return SalesforceSettings(**{**found, **options})


def token(sim: SalesforceSimulator, **kwargs) -> requests.Response:
    return requests.post(
        f"{sim.login_url}/services/oauth2/token", verify=sim.ca_bundle_path, timeout=10, **kwargs
    )


def signed(sim: SalesforceSimulator, key_pem: bytes | None = None, **claims) -> str:
    key = key_pem or open(sim.jwt_key_path, "rb").read()  # noqa: SIM115
    payload = {"iss": sim.client_id, "sub": sim.username, "aud": sim.login_url,
               "exp": int(time.time()) + 120, **claims}  # fmt: skip
    return jwt.encode(payload, key, algorithm="RS256")


def test_the_jwt_bearer_flow_logs_in_with_the_key_from_its_file(sim):
    client = SalesforceClient(settings(sim, "jwt"))
    assert client.integration_user() == sim.org.integration_user
    assert client.call("count", lambda sf: sf.query("SELECT COUNT() FROM Lead"))["totalSize"] > 0
    assert client.usage().requests["POST oauth2/token"] == 1


@pytest.mark.parametrize(
    ("claims", "error", "description"),
    [
        ({"iss": "someone-else"}, "invalid_client_id", "client identifier invalid"),
        ({"sub": "nobody@sim.example"}, "invalid_grant", "user hasn't approved this consumer"),
        ({"aud": "https://elsewhere.example"}, "invalid_grant", "audience is invalid"),
        ({"exp": int(time.time()) - 5}, "invalid_grant", "expired authorization code"),
    ],
)
def test_the_simulator_checks_every_claim(sim, claims, error, description):
    answer = token(sim, data={"grant_type": JWT_BEARER, "assertion": signed(sim, **claims)})
    assert answer.status_code == 400
    assert answer.json() == {"error": error, "error_description": description}


def test_an_assertion_signed_with_another_key_is_refused(sim):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())  # fmt: skip
    answer = token(sim, data={"grant_type": JWT_BEARER, "assertion": signed(sim, pem)})
    assert answer.json()["error_description"] == "invalid assertion"
    client = SalesforceClient(settings(sim, "jwt", private_key=pem.decode()))
    with pytest.raises(AuthError, match="invalid assertion") as refused:
        client.login()
    assert "PRIVATE KEY" not in str(refused.value)


def test_the_assertion_names_app_user_login_server_and_a_short_expiry(sim):
    options = settings(sim, "jwt")
    claims = jwt.decode(assertion(options), options={"verify_signature": False})
    assert (claims["iss"], claims["sub"]) == (sim.client_id, sim.username)
    assert claims["aud"] == "https://login.salesforce.com"
    assert 0 < claims["exp"] - time.time() <= 180
    sandbox = options.model_copy(
        update={"login_url": "https://acme--uat.sandbox.my.salesforce.com"}
    )
    assert audience(sandbox) == "https://test.salesforce.com"


def test_client_credentials_as_http_basic_or_in_the_form_but_not_both(sim):
    basic = base64.b64encode(f"{sim.client_id}:{sim.client_secret}".encode()).decode()
    header = {"Authorization": f"Basic {basic}"}
    grant = {"grant_type": "client_credentials"}
    assert token(sim, data=grant, headers=header).status_code == 200
    in_form = {**grant, "client_id": sim.client_id, "client_secret": sim.client_secret}
    assert token(sim, data=in_form).status_code == 200
    assert token(sim, data=in_form, headers=header).json()["error"] == "invalid_request"
    wrong = base64.b64encode(f"{sim.client_id}:nope".encode()).decode()
    answer = token(sim, data=grant, headers={"Authorization": f"Basic {wrong}"})
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_client")


def test_the_token_signature_is_the_hmac_of_id_and_issued_at(sim):
    form = {"grant_type": "client_credentials", "client_id": sim.client_id,
            "client_secret": sim.client_secret}  # fmt: skip
    first, second = token(sim, data=form).json(), token(sim, data=form).json()
    for body in (first, second):
        mac = hmac.new(sim.client_secret.encode(), (body["id"] + body["issued_at"]).encode(),
                       hashlib.sha256)  # fmt: skip
        assert body["signature"] == base64.b64encode(mac.digest()).decode()
    jwt_answer = token(sim, data={"grant_type": JWT_BEARER, "assertion": signed(sim)}).json()
    assert "signature" not in jwt_answer and "refresh_token" not in jwt_answer


@pytest.mark.parametrize(
    ("auth", "dropped", "named"),
    [
        ("jwt", "private_key_file", "adapters.salesforce.private_key"),
        ("jwt", "username", "adapters.salesforce.username"),
        ("password", "password", "adapters.salesforce.password"),
        ("client_credentials", "client_secret", "adapters.salesforce.client_secret"),
        ("refresh_token", "refresh_token", "adapters.salesforce.refresh_token"),
    ],
)
def test_settings_name_the_option_a_flow_lacks(sim, auth, dropped, named):
    """By its own key, as missing: `config check` then reports a secret not set yet as a
    warning, like HubSpot's token (it was `adapters.salesforce.(top level): Value error`)."""
    options = {k: v for k, v in sim.adapter_options(auth).items() if k != dropped}
    with pytest.raises(ValidationError) as caught:
        SalesforceSettings(**resolve_secret_files(options, "adapters.salesforce."))
    (error,) = caught.value.errors()
    assert (error["type"], error["msg"]) == ("missing", f"required with auth = '{auth}'")
    assert f"adapters.salesforce.{error['loc'][0]}" == named
    problems = describe_validation_error(caught.value, "adapters.salesforce.")
    assert problems == [f"{named}: required with auth = '{auth}'"]


def test_a_key_file_that_is_no_key_stops_the_program_naming_it(sim, tmp_path):
    bad = tmp_path / "key.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot a key\n-----END CERTIFICATE-----\n")
    options = {**sim.adapter_options("jwt"), "private_key_file": str(bad)}
    before = sum(sim.stats.by_endpoint.values())
    with pytest.raises(ValidationError) as caught:
        SalesforceSettings(**resolve_secret_files(options, "adapters.salesforce."))
    problems = describe_validation_error(caught.value, "adapters.salesforce.")
    assert problems == ["adapters.salesforce.private_key: the private key cannot be read: not a"
                        " PEM private key"]  # fmt: skip
    assert sum(sim.stats.by_endpoint.values()) == before
