"""Configuration: the shipped example is valid, every problem names its key, secrets stay hidden."""

from __future__ import annotations

import re
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator
from crm_qualify.connector import plugins
from crm_qualify.connector.cli import main
from crm_qualify.connector.commands import config as config_command
from crm_qualify.connector.commands.doctor import unanswered_criteria
from crm_qualify.connector.mapping import ADAPTER_GROUP
from crm_qualify.connector.model import OWNED_FIELDS, EventType
from crm_qualify.connector.ops import logs
from crm_qualify.connector.settings import ConfigurationError, load_settings, resolve_secret_files
from pydantic import SecretStr

from tests.test_secrets import record_network

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.toml"


def test_the_shipped_example_config_is_valid(capsys, monkeypatch):
    monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN", "pat-na1-example")
    settings = load_settings(EXAMPLE)
    assert settings.crm.adapter == "hubspot"
    assert main(["config", "check", str(EXAMPLE)]) == 0
    assert "configuration ok" in capsys.readouterr().out


def test_every_problem_is_reported_with_its_key(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        "[sync]\nstate_pth = 'x'\n[schedule]\ninterval_minutes = -5\n"
        "[fields.scor]\npolicy = 'always'\n[logging]\nlevel = 'LOUD'\n"
    )
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    for key in ("sync.state_pth", "schedule.interval_minutes", "fields", "logging.level"):
        assert key in err, err


def test_an_unknown_key_says_what_it_nearly_spells_or_which_table_has_it(tmp_path, capsys):
    """pydantic names an unknown key but not the one meant: a key in the wrong table read as
    a typo (`interval_minutes` under `[sync]`, where `[schedule]` has it)."""
    bad = tmp_path / "bad.toml"
    bad.write_text(
        "[crm]\nadapter = 'hubspot'\n[sync]\ninterval_minutes = 15\nreconcile_every_day = 3\n"
        "[rules.decay]\nfresh_day = 10\n[fields.stage]\npolcy = 'always'\n"
        "[adapters.hubspot]\naccess_token = 'pat-1'\nbase_ulr = 'http://127.0.0.1:1'\n"
    )
    for command in (["config", "check", str(bad)], ["sync", "--once", "--config", str(bad)]):
        assert main(command) == 2
        err = capsys.readouterr().err
        for line in (
            "sync.interval_minutes: Extra inputs are not permitted; it is a key of [schedule]",
            "sync.reconcile_every_day: Extra inputs are not permitted; did you mean"
            " sync.reconcile_every_days?",
            "rules.decay.fresh_day: Extra inputs are not permitted; did you mean"
            " rules.decay.fresh_days?",
            "fields.stage.polcy: Extra inputs are not permitted; did you mean fields.stage.policy?",
        ):
            assert line in err, err
    bad.write_text(
        "[crm]\nadapter = 'hubspot'\n"
        "[adapters.hubspot]\naccess_token = 'pat-1'\nbase_ulr = 'http://127.0.0.1:1'\n"
    )
    assert main(["sync", "--once", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert (
        "adapters.hubspot.base_ulr: Extra inputs are not permitted; did you mean"
        " adapters.hubspot.base_url?"
    ) in err, err
    assert "pat-1" not in err

    mapping = tmp_path / "mapping.toml"
    bundled = (Path(__file__).parents[1] / "mappings" / "hubspot.toml").read_text()
    mapping.write_text(bundled.replace("[objects.contacts.fields]", "[objects.contacts.feilds]"))
    bad.write_text(
        f"[crm]\nadapter = 'hubspot'\nmapping_file = '{mapping}'\n"
        "[adapters.hubspot]\naccess_token = 'pat-1'\n"
    )
    assert main(["config", "check", str(bad)]) == 2
    assert (
        f"mapping {mapping}: objects.contacts.feilds: Extra inputs are not permitted; did you"
        " mean objects.contacts.fields?"
    ) in capsys.readouterr().err


def test_a_misspelled_field_is_named_beside_another_fields_error(tmp_path, capsys):
    """`[fields.scroe]` was reported only once a bad policy in `[fields.stage]` was fixed:
    the unknown name is now named in the same pass, with the names that are known."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[fields.scroe]\npolicy = 'always'\n[fields.stage]\npolicy = 'sometimes'\n")
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "fields.stage.policy: Input should be" in err, err
    assert "fields.scroe: unknown field scroe; known: stage, " in err, err


def test_rules_errors_name_the_rules_key(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[rules]\nno_such_rule = 1\n")
    assert main(["config", "check", str(bad)]) == 2
    assert "rules.no_such_rule" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("table", "key", "reason"),
    [
        ("[rules.weights]\ndemo_request = nan", "rules.weights.demo_request", "finite number"),
        ("[rules.decay]\nhalf_life_days = inf", "rules.decay.half_life_days", "finite number"),
        ("[rules.fit.industries]\nsoftware = inf", "rules.fit.industries.software", "finite"),
        ("[sync]\nreconcile_every_days = inf", "sync.reconcile_every_days", "finite number"),
        ("[rules.weights]\nemail_open = -2", "rules.weights", "must be 0 or more: email_open"),
        ("[rules.caps]\nemail_open = -5", "rules.caps", "must be 0 or more: email_open"),
        ("[rules.temperature]\nwarm = 80\nhot = 65", "rules.temperature", "hot must be at or"),
        ("[rules.grades]\nfit_a = 5", "rules.grades", "fit_a >= fit_b >= fit_c must hold"),
        (
            "[[rules.fit.company_size]]\nmin = 5000\nmax = 50\npoints = 10",
            "rules.fit.company_size.0",
            "max (50) is below min (5000)",
        ),
        (
            "[rules.qualification]\nminimum = { budgett = 'met' }",
            "rules.qualification",
            "minimum names budgett, not a criterion of bant",
        ),
    ],
)
def test_rules_that_would_score_nonsense_are_refused_naming_the_key(
    tmp_path, capsys, table, key, reason
):
    """`nan` and `inf` are valid TOML: a weight of nan passed `config check`, and the sync
    wrote the new rules version to 294 contacts while failing 42 without naming the key. A
    negative cap or weight, warm above hot and grade bands out of order passed too."""
    bad = tmp_path / "bad.toml"
    bad.write_text(table + "\n")
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{key}: " in err and reason in err, err


def test_toml_syntax_error_names_the_file(tmp_path, capsys):
    bad = tmp_path / "broken.toml"
    bad.write_text("[crm\nadapter = 'hubspot'\n")
    assert main(["config", "check", str(bad)]) == 2
    assert "broken.toml" in capsys.readouterr().err


def test_missing_file_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="not found"):
        load_settings("/nonexistent/crm-qualify.toml")


def test_unknown_adapter_is_named(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("[crm]\nadapter = 'pipedrive'\n")
    assert main(["config", "check", str(config)]) == 2
    assert "crm.adapter: unknown adapter 'pipedrive'" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["file", "environment"])
@pytest.mark.parametrize(
    ("typo", "close"),
    [("hubspott", "hubspot"), ("HubSpot", "hubspot"), ("salesforse", "salesforce")],
)
def test_a_misspelt_crm_stops_every_command_naming_the_key_and_the_close_match(
    tmp_path, monkeypatch, capsys, where, typo, close
):
    """`[crm] adapter = "hubspott"` gave no close match, `config check` blamed a bundled
    mapping that does not exist, and `runs` or `score` went on with a CRM that cannot sync."""
    connects, _ = record_network(monkeypatch)
    monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN", "pat-x")
    config = tmp_path / "c.toml"
    config.write_text(f"[sync]\nstate_path = '{tmp_path / 's.sqlite'}'\n")
    if where == "file":
        config.write_text(f"[crm]\nadapter = '{typo}'\n" + config.read_text())
    else:
        monkeypatch.setenv("CRMQ_CRM__ADAPTER", typo)
    expected = (
        f"crm.adapter: unknown adapter {typo!r}; did you mean {close!r}?"
        " (available: hubspot, salesforce)"
    )
    contacts = str(ROOT / "examples" / "contacts.jsonl")
    for command in (
        ["config", "check", str(config)],
        ["doctor", "--config", str(config)],
        ["sync", "--once", "--config", str(config)],
        ["runs", "--config", str(config)],
        ["score", contacts, "--config", str(config)],
    ):
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert err == f"configuration error:\n  {expected}\n", (command, err)
    assert connects == []


def test_environment_overrides_the_file_with_nested_keys(tmp_path, monkeypatch):
    config = tmp_path / "c.toml"
    config.write_text("[sync]\nstate_path = 'from-file.sqlite'\n")
    monkeypatch.setenv("CRMQ_SYNC__STATE_PATH", "from-env.sqlite")
    monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN", "pat-canary-123")
    settings = load_settings(config)
    assert settings.sync.state_path == Path("from-env.sqlite")
    assert settings.adapters["hubspot"]["access_token"].get_secret_value() == "pat-canary-123"


def test_secret_files_fill_their_option(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("pat-from-file\n")
    resolved = resolve_secret_files({"access_token_file": str(secret)})
    assert list(resolved) == ["access_token"]
    assert isinstance(resolved["access_token"], SecretStr)
    assert resolved["access_token"].get_secret_value() == "pat-from-file"


def test_unreadable_secret_file_names_the_key_not_the_content(tmp_path):
    with pytest.raises(ConfigurationError) as caught:
        resolve_secret_files({"password_file": str(tmp_path / "missing")}, "adapters.salesforce.")
    assert "adapters.salesforce.password_file" in str(caught.value)


def test_a_bad_secret_value_is_never_echoed(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("[crm]\nadapter = 'hubspot'\n[adapters.hubspot]\naccess_token = 12345\n")
    main(["config", "check", str(config)])
    captured = capsys.readouterr()
    assert "12345" not in captured.out + captured.err


def test_an_environment_value_that_is_not_json_for_its_table_is_a_configuration_error(
    monkeypatch, capsys
):
    monkeypatch.delenv("CRMQ_CONFIG", raising=False)
    monkeypatch.setenv("CRMQ_SCHEDULE", "{interval_minutes: 5")
    assert main(["config", "check"]) == 2
    assert 'field "schedule"' in capsys.readouterr().err


# config check: every problem in one pass, the example clean as shipped -----------------------
@pytest.fixture
def no_registered_secrets(monkeypatch):
    """Secret values other tests registered (some are plain words) mask nothing here."""
    monkeypatch.setattr(logs, "_secrets", set())


def test_the_example_checks_clean_as_shipped_with_the_missing_token_as_a_warning(
    monkeypatch, capsys, no_registered_secrets
):
    monkeypatch.delenv("CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN", raising=False)
    assert main(["config", "check", str(EXAMPLE)]) == 0
    captured = capsys.readouterr()
    assert "configuration ok" in captured.out
    assert captured.err.strip() == (
        "warning: adapters.hubspot.access_token: not set yet; set"
        " CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN or access_token_file (doctor, sync and run need it)"
    )
    assert main(["config", "check", "--strict", str(EXAMPLE)]) == 2
    assert "adapters.hubspot.access_token: not set yet" in capsys.readouterr().err


def test_the_example_says_how_it_is_checked_and_shows_a_simulator_base_url():
    text = EXAMPLE.read_text()
    header = text.split("[crm]", 1)[0]
    assert "--strict" in header and "warning" in header
    assert "./crm-qualify.toml" in header, "where the file is found"
    assert re.search(r'^# base_url = "http://127\.0\.0\.1:\d+"$', text, re.M)
    assert "crm-qualify simulate hubspot" in text


def test_the_example_pointed_at_the_simulator_passes_doctors_first_checks(
    tmp_path, monkeypatch, capsys
):
    """What the example's comment says to do: uncomment base_url, use the simulator's token."""
    monkeypatch.delenv("CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN", raising=False)
    with HubSpotSimulator(contacts=5) as sim:
        text = re.sub(
            r'^# base_url = ".*"$', f'base_url = "{sim.base_url}"', EXAMPLE.read_text(), flags=re.M
        )
        text = text.replace('# access_token = ""', f'access_token = "{sim.token}"')
        config = tmp_path / "crm-qualify.toml"
        config.write_text(text)
        main(["doctor", "--config", str(config)])
    out = capsys.readouterr().out
    assert f"[ok  ] reach {sim.base_url}" in out
    assert "[ok  ] credentials" in out


def test_every_layer_is_reported_in_one_pass(tmp_path, capsys, no_registered_secrets):
    secret = tmp_path / "unreadable-secret"
    config = tmp_path / "c.toml"
    config.write_text(
        "[crm]\nadapter = 'salesforce'\ninstnce = 'typo'\n"
        f"mapping_file = '{tmp_path / 'absent-mapping.toml'}'\n"
        "[sync]\nstate_pth = 'x'\n"
        "[schedule]\ncron = '*/70 25 * * funday'\n"
        "[adapters.salesforce]\nlogin_url = 'https://login.salesforce.com'\n"
        "username = 'u'\npassword = 'p'\nbogus_option = 1\n"
        f"ca_bundle = '{tmp_path / 'absent-ca.pem'}'\n"
        f"client_secret_file = '{secret}'\n"
    )
    assert main(["config", "check", str(config)]) == 2
    err = capsys.readouterr().err
    for expected in (
        "crm.instnce: Extra inputs are not permitted",  # core
        "sync.state_pth: Extra inputs are not permitted",
        "schedule.cron: '*/70 25 * * funday'",  # the schedule
        "adapters.salesforce.client_id: Field required",  # the adapter's own section
        "adapters.salesforce.bogus_option: Extra inputs are not permitted",
        f"adapters.salesforce.ca_bundle: {tmp_path / 'absent-ca.pem'}: no such file",  # files
        f"adapters.salesforce.client_secret_file: {secret}: no such file",
        "crm.mapping_file: cannot read",  # the mapping
    ):
        assert expected in err, f"{expected!r} missing from:\n{err}"
    assert "client_secret: not set yet" not in err, "the unreadable file is the one problem"


@pytest.mark.parametrize(
    ("cron", "reason"),
    [
        ("*/70 25 * * funday", 'Invalid weekday name "funday"'),
        ("every monday", "needs 5 fields"),
        ("0 25 * * *", "higher than the maximum value (23)"),
        ("*/70 * * * *", "step value (70)"),
    ],
)
def test_config_check_rejects_a_bad_cron_naming_the_key_and_reason(tmp_path, capsys, cron, reason):
    config = tmp_path / "c.toml"
    config.write_text(f"[schedule]\ncron = '{cron}'\n")
    assert main(["config", "check", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"schedule.cron: '{cron}'" in err and reason in err


def test_config_check_refuses_a_phone_region_numbers_cannot_be_read_in(tmp_path, capsys):
    """`default_region = "ZZ"` passed `config check` and switched national-number matching
    off without a word."""
    config = tmp_path / "c.toml"
    config.write_text("[identity.phone]\ndefault_region = 'ZZ'\n")
    assert main(["config", "check", str(config)]) == 2
    err = capsys.readouterr().err
    assert "identity.phone.default_region: 'ZZ'" in err and "ZA" in err, err


def test_the_examples_own_cron_is_accepted(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN", "pat-x")
    (cron,) = re.findall(r'^# cron = "(.+)"$', EXAMPLE.read_text(), re.M)
    config = tmp_path / "c.toml"
    config.write_text(f"[schedule]\ncron = '{cron}'\n")
    assert main(["config", "check", str(config)]) == 0


def test_a_ca_bundle_that_holds_no_certificate_is_named(tmp_path, capsys, no_registered_secrets):
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("this is not a certificate\n")
    config = tmp_path / "c.toml"
    config.write_text(
        "[crm]\nadapter = 'salesforce'\n[adapters.salesforce]\nclient_id = 'x'\n"
        f"username = 'u'\npassword = 'p'\nca_bundle = '{not_pem}'\n"
    )
    assert main(["config", "check", str(config)]) == 2
    assert f"adapters.salesforce.ca_bundle: {not_pem}: not a PEM bundle" in capsys.readouterr().err


def test_a_table_for_an_adapter_that_is_not_installed_is_a_warning(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN", "pat-x")
    config = tmp_path / "c.toml"
    config.write_text("[adapters.pipedrive]\napi_token_file = '/run/secrets/x'\n")
    assert main(["config", "check", str(config)]) == 0
    assert "warning: adapters.pipedrive: no adapter of that name is installed" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize("where", ["file", "environment"])
def test_a_table_nearly_naming_an_installed_adapter_stops_the_program(
    tmp_path, monkeypatch, capsys, where
):
    """`[adapters.hubspt]` was only a warning in `config check`, none in sync or doctor: the
    adapter ran on its defaults and sent its requests to api.hubapi.com, not the base_url."""
    monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN", "pat-x")
    config = tmp_path / "c.toml"
    config.write_text(f"[sync]\nstate_path = '{tmp_path / 's.sqlite'}'\n")
    if where == "file":
        config.write_text(
            config.read_text() + "[adapters.hubspt]\nbase_url = 'http://127.0.0.1:9'\n"
        )
    else:
        monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPT__BASE_URL", "http://127.0.0.1:9")
    expected = (
        "adapters.hubspt: no adapter of that name is installed; did you mean adapters.hubspot?"
    )
    for command in (["config", "check"], ["sync", "--once", "--config"], ["doctor", "--config"]):
        assert main([*command, str(config)]) == 2
        assert expected in capsys.readouterr().err


SALESFORCE_OPTIONS = 'client_id = "i"\nclient_secret = "s"\nusername = "u"\npassword = "p"\n'


@pytest.mark.parametrize(("crm", "mapping"), [("salesforce_cpq", "salesforce"), ("hubspot",) * 2])
def test_a_plugin_named_close_to_a_built_in_is_no_near_miss_once_installed(
    tmp_path, monkeypatch, capsys, crm, mapping
):
    """`[adapters.salesforce_cpq]` is a plugin's table, not a misspelt `[adapters.salesforce]`,
    whether the plugin is the configured adapter or one kept for later."""
    installed = plugins.available_adapters()
    point = EntryPoint(
        "salesforce_cpq", "crm_qualify.adapters.salesforce:SalesforceAdapter", ADAPTER_GROUP
    )
    adapters = {**installed, "salesforce_cpq": point}
    monkeypatch.setattr(plugins, "available_adapters", lambda: adapters)
    monkeypatch.setattr(config_command, "available_adapters", lambda: adapters)
    monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN", "pat-x")
    config = tmp_path / "c.toml"
    config.write_text(
        f"[crm]\nadapter = '{crm}'\nmapping_file = '{ROOT / 'mappings' / mapping}.toml'\n"
        f"[adapters.salesforce_cpq]\n{SALESFORCE_OPTIONS}"
    )
    assert main(["config", "check", str(config)]) == 0, capsys.readouterr().err
    assert capsys.readouterr().err == ""


def test_the_configured_plugins_table_is_no_near_miss_when_it_is_not_installed(tmp_path, capsys):
    """The configured plugin not installed: `crm.adapter` says so, once; its table was also
    refused as a misspelt `[adapters.salesforce]`."""
    config = tmp_path / "c.toml"
    config.write_text(
        "[crm]\nadapter = 'salesforce_cpq'\n"
        f"[adapters.salesforce_cpq]\n{SALESFORCE_OPTIONS}"
        f"[sync]\nstate_path = '{tmp_path / 's.sqlite'}'\n"
    )
    expected = (
        "configuration error:\n  crm.adapter: unknown adapter 'salesforce_cpq'; did you mean"
        " 'salesforce'? (available: hubspot, salesforce)\n"
    )
    for command in (["config", "check"], ["sync", "--once", "--config"], ["doctor", "--config"]):
        assert main([*command, str(config)]) == 2
        assert capsys.readouterr().err == expected, command


def test_a_variable_naming_no_section_is_an_error_naming_it(monkeypatch):
    """pydantic-settings skips a `CRMQ_X__Y` whose X is no section: a typo would leave the
    default in force without a word."""
    monkeypatch.setenv("CRMQ_SYNCC__STATE_PATH", "/x")
    monkeypatch.setenv("CRMQ_FULL_MATRIX", "1")  # no `__`: not a setting, not ours to judge
    with pytest.raises(ConfigurationError) as refused:
        load_settings()
    assert refused.value.problems == [
        "CRMQ_SYNCC__STATE_PATH: no section 'syncc' (sections: adapters, calibrate, crm,"
        " fields, identity, logging, rules, schedule, server, sync)"
    ]
    monkeypatch.delenv("CRMQ_SYNCC__STATE_PATH")
    assert load_settings().sync.state_path
    monkeypatch.setenv("CRMQ_SYNC_STATE_PATH", "/x")
    with pytest.raises(ConfigurationError) as refused:
        load_settings()
    assert refused.value.problems == [
        "CRMQ_SYNC_STATE_PATH: a section and its key take two underscores: CRMQ_SYNC__STATE_PATH"
    ]


def _choices(values) -> str:
    quoted = [f"'{value}'" for value in values]
    return f"Input should be {', '.join(quoted[:-1])} or {quoted[-1]}"


EVENTS = _choices(EventType)


@pytest.mark.parametrize(
    ("crm", "typo", "problem"),
    [
        (
            "hubspot",
            ('event = "call"', 'event = "cal"'),
            f"engagement.activities.0.event: {EVENTS}",
        ),
        (
            "hubspot",
            ('event = "meeting_booked"', 'event = "pageview"'),
            f"objects.contacts.dates.1.event: {EVENTS}",
        ),
        (
            "hubspot",
            ('["demo", "demo_request"]', '["demo", "demo_requests"]'),
            f"objects.contacts.conversions.rules.0.1: {EVENTS}",
        ),
        (
            "hubspot",
            ('forms_default = "form_submission"', 'forms_default = "form"'),
            f"engagement.forms_default: {EVENTS}",
        ),
        (
            "hubspot",
            ('object = "calls"', 'object = "call"'),
            "engagement.activities.0.object: "
            + _choices(["calls", "meetings", "emails", "notes", "communications"]),
        ),
        (
            "hubspot",
            ('fallback_for = "emails"', 'fallback_for = "email"'),
            "objects.contacts.dates.0.fallback_for: "
            + _choices(
                [
                    "calls",
                    "meetings",
                    "emails",
                    "notes",
                    "communications",
                    "forms",
                    "marketing_events",
                ]
            ),  # fmt: skip
        ),
        (
            "hubspot",
            ('form = "demo"', 'form = "demo("'),
            "engagement.forms.0.form: Value error, not a regular expression: missing ),"
            " unterminated subpattern at position 4",
        ),
        (
            "hubspot",
            ('"Yes" = "met"', '"Yes" = "yes"'),
            "objects.contacts.qualification_values: Value error, not an answer: Yes = 'yes';"
            " answers: met, in_progress, not_met",
        ),
        (
            "hubspot",
            ('score = "crmq_score"', 'scor = "crmq_score"'),
            "objects.contacts.fields: Value error, not an owned canonical field: scor; known: "
            + ", ".join(OWNED_FIELDS),
        ),
        (
            "hubspot",
            ('fit_score = "crmq_fit_score"', 'fit_score = "crmq_score"'),
            "objects.contacts.fields: one CRM field for several owned fields:"
            " score and fit_score = 'crmq_score'",
        ),
        (
            "salesforce",
            ('event = "trial_start"', 'event = "trial"'),
            f"engagement.campaign_members.2.event: {EVENTS}",
        ),
        (
            "salesforce",
            ('event = "meeting_booked"', 'event = "meeting"'),
            f"engagement.events.event: {EVENTS}",
        ),
        (
            "salesforce",
            ('"Met" = "met"', '"Met" = "yes"'),
            "people.qualification_values.Met: " + _choices(["met", "in_progress", "not_met"]),
        ),
        (
            "salesforce",
            ('recurring_types = "Renewal|Subscription"', 'recurring_types = "Renewal|*"'),
            "deals.recurring_types: Value error, not a regular expression: nothing to repeat at"
            " position 8",
        ),
    ],
)
def test_a_mapping_value_the_adapter_cannot_use_names_its_key_and_the_valid_values(
    tmp_path, capsys, crm, typo, problem
):
    """An unknown event type was `crm.mapping_file: …: the hubspot adapter cannot use it:
    ValueError: 'cal' is not a valid EventType`, naming neither the key nor the valid values;
    a bad regular expression or answer, likewise; a bad answer in HubSpot's
    qualification_values named pydantic's union types, an unknown field no known one."""
    bundled = (ROOT / "mappings" / f"{crm}.toml").read_text()
    assert typo[0] in bundled
    config = _mapping_config(tmp_path, crm, bundled.replace(*typo, 1))
    expected = f"configuration error:\n  mapping {tmp_path / 'mapping.toml'}: {problem}\n"
    for command in (["config", "check"], ["sync", "--once", "--config"], ["doctor", "--config"]):
        assert main([*command, str(config)]) == 2
        assert capsys.readouterr().err == expected, command


@pytest.mark.parametrize(
    ("crm", "typo", "key"),
    [
        (
            "hubspot",
            ("[objects.contacts.stages]", "[objects.contacts.stagez]"),
            "objects.contacts.stagez",
        ),
        ("hubspot", ('email = "email"', 'emial = "email"'), "objects.contacts.profile.emial"),
        ("hubspot", ("[tasks]", "[task]"), "task"),
        ("salesforce", ("[objects.Lead.stages]", "[objects.Lead.stagez]"), "objects.Lead.stagez"),
        ("salesforce", ("match_leads = true", "match_lead = true"), "accounts.match_lead"),
        ("salesforce", ('subtype = "Call"', 'sub_type = "Call"'), "engagement.tasks.0.sub_type"),
        (
            "hubspot",
            ('need = "qualification_need"', 'nead = "qualification_need"'),
            "objects.contacts.qualification",
        ),
        (
            "salesforce",
            ('need = "Qualification_Need__c"', 'nead = "Qualification_Need__c"'),
            "people.qualification",
        ),
    ],
)
def test_a_mistyped_mapping_key_stops_the_program_naming_it(tmp_path, capsys, crm, typo, key):
    """A mapping is a copy of the bundled one: `[objects.contacts.stagez]` was read as no
    stages at all (config check and doctor passed, the sync created hand-offs for contacts
    already MQL), and `emial = "email"` stopped reading emails and moved 67 temperatures."""
    bundled = (Path(__file__).parents[1] / "mappings" / f"{crm}.toml").read_text()
    assert typo[0] in bundled
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(bundled.replace(typo[0], typo[1], 1))
    config = tmp_path / "crm-qualify.toml"
    options = {
        "hubspot": 'access_token = "x"',
        "salesforce": 'client_id = "i"\nclient_secret = "s"\nusername = "u"\npassword = "p"',
    }[crm]
    config.write_text(
        f'[crm]\nadapter = "{crm}"\nmapping_file = "{mapping}"\n[adapters.{crm}]\n{options}\n'
        f'[sync]\nstate_path = "{tmp_path / "s.sqlite"}"\n'
    )
    expected = f"mapping {mapping}: {key}: " + (
        "Value error, not a qualification criterion: nead"
        if key.endswith("qualification")
        else "Extra inputs are not permitted"
    )
    for command in (["config", "check", str(config)], ["sync", "--once", "--config", str(config)]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.count(expected) == 1, err
    mapping.write_text(bundled)
    assert main(["config", "check", str(config)]) == 0


@pytest.mark.parametrize(
    ("crm", "owned", "read"),
    [
        (
            "salesforce",
            ('fit_score = "CRMQ_Fit_Score__c"', 'fit_score = "NumberOfEmployees"'),
            "objects.Lead.fields.fit_score = 'NumberOfEmployees' is also read as"
            " objects.Lead.profile.employees",
        ),
        (
            "salesforce",
            ('grade = "CRMQ_Grade__c"', 'grade = "qualification_budget__c"'),
            "objects.Lead.fields.grade = 'qualification_budget__c' is also read as"
            " people.qualification.budget",
        ),
        (
            "hubspot",
            ('grade = "crmq_grade"', 'grade = "country"'),
            "objects.contacts.fields.grade = 'country' is also read as"
            " objects.contacts.profile.country",
        ),
        (
            "hubspot",
            ('grade = "crmq_grade"', 'grade = "first_conversion_event_name"'),
            "objects.contacts.fields.grade = 'first_conversion_event_name' is also read as"
            " objects.contacts.conversions.pairs[0][0]",
        ),
        (
            "hubspot",
            ('grade = "crmq_grade"', 'grade = "hs_email_open"'),
            "objects.contacts.fields.grade = 'hs_email_open' is also read as"
            " objects.contacts.counters[1].count",
        ),
    ],
)
def test_an_owned_field_on_a_field_read_as_a_fact_stops_the_program_naming_both_keys(
    tmp_path, capsys, crm, owned, read
):
    """`fit_score = "NumberOfEmployees"` passed config check and doctor; the run wrote fit
    scores over 110 Leads' employee counts (2500 -> 0), and the negative ones then failed
    those Leads' reads, so rollback could not restore them. Not owned, it is never written:
    no problem."""
    bundled = (ROOT / "mappings" / f"{crm}.toml").read_text()
    assert owned[0] in bundled
    config = _mapping_config(tmp_path, crm, bundled.replace(*owned, 1))
    problem = (
        f"mapping {tmp_path / 'mapping.toml'}: {read}: crm-qualify would write over the CRM's"
        " own data there; map the owned field to a field of its own"
    )
    for command in (["config", "check"], ["sync", "--once", "--config"], ["doctor", "--config"]):
        assert main([*command, str(config)]) == 2
        assert capsys.readouterr().err == f"configuration error:\n  {problem}\n", command
    name = owned[1].split(" =")[0]
    config.write_text(config.read_text() + f"[fields.{name}]\nowned = false\n")
    assert main(["config", "check", str(config)]) == 0


def test_a_field_not_owned_may_share_its_crm_field(tmp_path, capsys):
    """Reasons mapped onto the field of `duplicate_group`, which is not owned by default (so
    never written), stopped the program: 'one CRM field for several owned fields'."""
    bundled = (ROOT / "mappings" / "salesforce.toml").read_text()
    reasons = 'reasons = "CRMQ_Reasons__c"'
    assert reasons in bundled
    text = bundled.replace(reasons, 'reasons = "CRMQ_Duplicate_Group__c"', 1)
    config = _mapping_config(tmp_path, "salesforce", text)
    assert main(["config", "check", str(config)]) == 0
    config.write_text(config.read_text() + "[fields.duplicate_group]\nowned = true\n")
    assert main(["config", "check", str(config)]) == 2
    assert (
        "objects.Lead.fields: one CRM field for several owned fields:"
        " reasons and duplicate_group = 'CRMQ_Duplicate_Group__c'" in capsys.readouterr().err
    )


def _mapping_config(tmp_path: Path, crm: str, mapping_text: str, extra: str = "") -> Path:
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(mapping_text)
    options = {"hubspot": 'access_token = "x"\n', "salesforce": SALESFORCE_OPTIONS}[crm]
    config = tmp_path / "crm-qualify.toml"
    config.write_text(
        f'[crm]\nadapter = "{crm}"\nmapping_file = "{mapping}"\n[adapters.{crm}]\n{options}'
        f'{extra}[sync]\nstate_path = "{tmp_path / "s.sqlite"}"\n'
    )
    return config


def _without(text: str, start: str, end: str) -> str:
    return text[: text.index(start)] + text[text.index(end) :]


@pytest.mark.parametrize(
    ("crm", "edit", "extra", "problem"),
    [
        (
            "hubspot",
            lambda text: text + '\n[objects.leads.fields]\nscore = "crmq_score"\n',
            "",
            "[objects.leads]: not an object this adapter reads"
            " (adapters.hubspot.object_type: contacts)",
        ),
        (
            "hubspot",
            lambda text: text,
            'object_type = "p_people"\n',
            "[objects.contacts]: not an object this adapter reads"
            " (adapters.hubspot.object_type: p_people); no [objects.p_people] table, which"
            " adapters.hubspot.object_type reads",
        ),
        (
            "salesforce",
            lambda text: text + '\n[objects.Account.fields]\nscore = "CRMQ_Score__c"\n',
            "",
            "[objects.Account]: not an object this adapter reads"
            " (adapters.salesforce.objects: Lead, Contact)",
        ),
        (
            "salesforce",
            lambda text: _without(text, "[objects.Contact]", "[people]"),
            "",
            "no [objects.Contact] table, which adapters.salesforce.objects reads",
        ),
    ],
)
def test_an_object_table_the_adapter_does_not_read_stops_the_program_naming_it(
    tmp_path, capsys, crm, edit, extra, problem
):
    """`[objects.leads]` in a HubSpot mapping was accepted and read by nothing; a table the
    settings read but the mapping lacks was `KeyError: 'Contact'`."""
    bundled = (ROOT / "mappings" / f"{crm}.toml").read_text()
    config = _mapping_config(tmp_path, crm, edit(bundled), extra)
    expected = f"mapping {tmp_path / 'mapping.toml'}: objects: Value error, {problem}"
    for command in (["config", "check"], ["sync", "--once", "--config"], ["doctor", "--config"]):
        assert main([*command, str(config)]) == 2
        err = capsys.readouterr().err
        assert err == f"configuration error:\n  {expected}\n", (command, err)


def test_a_salesforce_mapping_may_keep_the_table_of_an_object_not_read(tmp_path, capsys):
    bundled = (ROOT / "mappings" / "salesforce.toml").read_text()
    config = _mapping_config(tmp_path, "salesforce", bundled, 'objects = ["Lead"]\n')
    assert main(["config", "check", str(config)]) == 0, capsys.readouterr().err


def test_a_mistake_in_an_environment_variable_names_the_variable(tmp_path, monkeypatch):
    """The file has no such key: the error says where the key came from."""
    config = tmp_path / "c.toml"
    config.write_text("[rules.thresholds]\nmql = 50\nmqll = 60\n")
    monkeypatch.setenv("CRMQ_RULES__THRESHOLDS__SQLL", "70")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(config)
    problems = caught.value.problems
    assert any(
        p.startswith("rules.thresholds.sqll:")
        and p.endswith("(from the environment variable CRMQ_RULES__THRESHOLDS__SQLL)")
        for p in problems
    ), problems
    assert any(p.startswith("rules.thresholds.mqll:") and "environment" not in p for p in problems)


def test_a_mistake_in_an_adapter_option_set_by_a_variable_names_the_variable(
    tmp_path, monkeypatch, capsys
):
    """`CRMQ_ADAPTERS__HUBSPOT__ACCES_TOKEN` was reported as `adapters.hubspot.acces_token`
    alone, and a user looked for it in the file (the value is never shown)."""
    config = tmp_path / "c.toml"
    config.write_text("[crm]\nadapter = 'hubspot'\n")
    monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__ACCES_TOKEN", "secret-value-123")
    assert main(["config", "check", str(config)]) == 2
    err = capsys.readouterr().err
    assert "adapters.hubspot.acces_token:" in err
    assert "(from the environment variable CRMQ_ADAPTERS__HUBSPOT__ACCES_TOKEN)" in err
    assert "secret-value-123" not in err
    settings = load_settings(config)
    with pytest.raises(ConfigurationError) as caught:
        plugins.adapter_settings(plugins.load_adapter_class("hubspot"), settings)
    assert any("CRMQ_ADAPTERS__HUBSPOT__ACCES_TOKEN" in p for p in caught.value.problems)


@pytest.mark.parametrize("command", [["doctor"], ["sync", "--once", "--dry-run"], ["runs"]])
def test_a_command_lists_every_problem_config_check_finds(tmp_path, capsys, command):
    """`doctor` and `sync` named 5 of the 8 problems `config check` named (the schedule, the
    adapter's options and the mapping file were left out): a user who fixed them met new
    ones. A configuration that does not load is reported as `config check` reports it."""
    config = tmp_path / "c.toml"
    config.write_text(
        "[crm]\nadapter = 'hubspot'\nmapping_file = '/nonexistent/map.toml'\n"
        "[adapters.hubspot]\nacess_token = 'x'\n[sync]\nmax_retry_records = 'lots'\n"
        "[schedule]\ncron = '61 * * * *'\n"
    )
    assert main(["config", "check", str(config)]) == 2
    checked = capsys.readouterr().err
    assert main([*command, "--config", str(config)]) == 2
    said = capsys.readouterr().err
    for key in ("crm.mapping_file", "adapters.hubspot.acess_token", "max_retry_records", "cron"):
        assert key in checked and key in said, (key, said)


# a framework whose criteria the mapping does not map ----------------------------------------
def framework_config(tmp_path: Path, adapter: str, framework: str, extra: str = "") -> Path:
    config = tmp_path / "crm-qualify.toml"
    options = (
        "[adapters.salesforce]\nclient_id = 'id'\nusername = 'sync@example.com'\n"
        if adapter == "salesforce"
        else ""
    )
    config.write_text(
        f"[crm]\nadapter = '{adapter}'\n{options}"
        f"[rules.qualification]\nframework = '{framework}'\n{extra}"
    )
    return config


@pytest.mark.parametrize(
    ("adapter", "framework", "lacking", "table"),
    [
        (
            "salesforce",
            "meddic",
            "metrics, economic_buyer, decision_criteria, decision_process, identify_pain, champion",
            "[people.qualification]",
        ),
        (
            "hubspot",
            "champ",
            "challenges, money, prioritization",
            "[objects.contacts.qualification]",
        ),
    ],
)
def test_config_check_warns_of_a_framework_the_mapping_leaves_unanswered(
    tmp_path, capsys, adapter, framework, lacking, table
):
    """The bundled mappings answer BANT's criteria only: with MEDDIC or CHAMP no one became
    SQL by the framework, and nothing said so. A warning (SQL by score may be the plan)."""
    config = framework_config(tmp_path, adapter, framework)
    assert main(["config", "check", str(config)]) == 0, "a warning, not a problem"
    err = " ".join(capsys.readouterr().err.split())
    assert f"rules.qualification: framework {framework} needs {lacking}" in err
    assert "no answer in the mapping" in err
    assert f"add each to {table} of bundled mappings/{adapter}.toml" in err
    assert "no one becomes SQL by the framework" in err


def test_no_warning_when_the_mapping_answers_every_criterion_or_one_is_left_out(tmp_path, capsys):
    for adapter in ("salesforce", "hubspot"):
        assert main(["config", "check", str(framework_config(tmp_path, adapter, "bant"))]) == 0
        assert "rules.qualification" not in capsys.readouterr().err
    optional = "".join(
        f"minimum.{name} = 'not_met'\n" for name in ("challenges", "money", "prioritization")
    )
    assert (
        main(["config", "check", str(framework_config(tmp_path, "hubspot", "champ", optional))])
        == 0
    )
    assert "rules.qualification" not in capsys.readouterr().err


def test_doctor_warns_of_the_unanswered_criteria_too(tmp_path, monkeypatch):
    """`doctor` runs the same check (`unanswered_criteria`) on the adapter it built."""
    monkeypatch.setenv("CRMQ_ADAPTERS__HUBSPOT__ACCESS_TOKEN", "pat-na1-example")
    settings = load_settings(
        framework_config(tmp_path, "hubspot", "meddic", "[rules.thresholds]\nsql_by_score = true\n")
    )
    adapter = plugins.construct(
        plugins.load_adapter_class("hubspot"),
        plugins.adapter_settings(plugins.load_adapter_class("hubspot"), settings),
        settings,
    )
    warning = unanswered_criteria(settings, adapter)
    assert warning is not None and "framework meddic needs metrics" in warning
    assert "SQL comes by score only (sql_by_score)" in warning


def test_a_relative_state_path_that_would_start_a_second_state_file_is_refused(
    tmp_path, monkeypatch, capsys
):
    """cron runs `--config /etc/.../crm-qualify.toml` from another folder: the relative
    state_path would open a new, empty state file there, beside none, while the one in use
    sits beside the configuration. Refused, naming the key and both places; from the
    configuration's folder, or once the path is absolute, it loads."""
    home, elsewhere = tmp_path / "etc", tmp_path / "cwd"
    home.mkdir()
    elsewhere.mkdir()
    config = home / "crm-qualify.toml"
    config.write_text("[sync]\nstate_path = 'state.sqlite'\n")
    (home / "state.sqlite").write_bytes(b"")
    monkeypatch.chdir(elsewhere)
    with pytest.raises(ConfigurationError) as refused:
        load_settings(config)
    (problem,) = refused.value.problems
    assert problem.startswith("sync.state_path: state.sqlite") and str(home) in problem
    assert main(["runs", "--config", str(config)]) == 2
    assert "sync.state_path:" in capsys.readouterr().err
    assert not (elsewhere / "state.sqlite").exists(), "no second state file"

    monkeypatch.chdir(home)
    assert load_settings(config).sync.state_path == Path("state.sqlite")
    monkeypatch.chdir(elsewhere)
    config.write_text(f"[sync]\nstate_path = '{home / 'state.sqlite'}'\n")
    assert load_settings(config).sync.state_path == home / "state.sqlite"


def test_a_relative_state_path_with_no_state_file_anywhere_is_a_first_run(tmp_path, monkeypatch):
    config = tmp_path / "etc" / "crm-qualify.toml"
    config.parent.mkdir()
    config.write_text("[sync]\nstate_path = 'state.sqlite'\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings(config).sync.state_path == Path("state.sqlite")
