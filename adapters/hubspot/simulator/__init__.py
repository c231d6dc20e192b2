"""A faithful local HubSpot API (CRM v3/v4, properties, owners, pipelines, OAuth) for the demo,
end-to-end tests and benchmarks, since real HubSpot is out of reach.

    from crm_qualify.adapters.hubspot.simulator import HubSpotSimulator

    with HubSpotSimulator(contacts=1000, seed=1) as sim:   # starts on 127.0.0.1:<free port>
        sim.base_url, sim.token      # where to point the adapter, and the private-app token
        sim.store.objects["contacts"][contact_id]["properties"]
        sim.stats.by_endpoint["POST /crm/v3/objects/contacts/batch/update"]
        sim.faults.add("429", times=2, path_contains="/batch/update")
        sim.faults.add("lost", request="tasks.batch_create")  # kinds: see faults.py

Pointing hubspot-api-client v12 at the simulator: pass `host` to the client,

    client = HubSpot(access_token=sim.token, host=sim.base_url)

`HubSpot(**config)` copies every config key onto each generated `Configuration`
(`DiscoveryBase._default_api_factory` does `setattr(configuration, key, value)`) and
`Configuration.host` is a setter that replaces `https://api.hubapi.com`. Setting
`client.crm.contacts.basic_api.api_client.configuration.host = ...` does not stick: every
`.basic_api` / `.batch_api` / `.search_api` access builds a fresh ApiClient, so keep the API
object if you configure it that way. `retry=urllib3.Retry(...)` goes through the same path. The
client raises `ApiException` for 4xx/5xx (429 included, never retried by itself) and returns the
`...WithErrors` model for 207 answers.

Behaviour an adapter must cope with (as in HubSpot): batch results are not in input order
(match by `id` / `objectWriteTraceId`); search trails writes by `search_index_lag` seconds and
stops at 10,000 results; imports leave >10,000 contacts with one identical `lastmodifieddate`;
every write bumps `lastmodifieddate` (`hs_lastmodifieddate` on other objects); API writes cannot
move `lifecyclestage` backwards (the value is kept unless it is cleared first); analytics and
email-engagement properties are read-only. Path values arrive percent-encoded
(`x%40y.org?idProperty=email`) and are decoded. `crm-qualify simulate hubspot` lags search by
`--search-lag-seconds` (2 s by default; the class defaults to 0; `sim.store.index.settle()`
publishes lagging writes at once, under `sim.store.lock`). OAuth: `POST /oauth/v1/token`
refreshes `oauth_refresh_token` into access tokens of `access_token_ttl` seconds measured on
`auth_clock`; with `rotate_refresh_tokens` (the command line's default) each refresh answers a
new refresh token and voids the old one. `propertiesWithHistory` answers
newest first: API writes as `INTEGRATION` (sourceId = the app id), `touch()` as `CRM_UI` (with
`updatedByUserId`), `simulate_engagement()` as `ANALYTICS`, seeded values as one `IMPORT` entry.
`POST /crm/v3/objects/contacts/merge` merges two contacts into a new one, as HubSpot does now
(merge.py); reading an id merged away answers the merged contact. `duplicates=True` seeds the
labelled duplicates of `adapters/seeded_people.py` (`sim.seeded_people`: label -> record key).
Pipelines exist for deals, contacts (the lifecycle stages) and tickets (HubSpot's default
support pipeline, served without ticket records). Differences from the real API are listed in the
docstrings where they occur (e.g. v4 association types omit `label` when HubSpot sends null).
"""

from .cli import main
from .simulator import HubSpotSimulator

__all__ = ["HubSpotSimulator", "main"]
