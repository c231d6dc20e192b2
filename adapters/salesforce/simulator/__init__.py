"""A faithful local Salesforce org for the demo, end-to-end tests and benchmarks.

    from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator

    with SalesforceSimulator(records=2000, seed=1) as sim:   # TLS on 127.0.0.1:<free port>
        sim.instance_url, sim.login_url, sim.ca_bundle_path     # trust the CA via its bundle
        sim.session_id                                          # a valid session for direct use
        sim.store.records["Lead"][lead_id]                      # field -> value
        sim.stats.by_endpoint["PATCH composite/sobjects"]; sim.stats.writes
        sim.faults.add("lost", request="upsert")      # see faults.py for every kind
        sim.refuse("Lead", "Rating", "Hot")           # a value the org's picklist lost
        SalesforceSettings(**sim.adapter_options())   # the adapter pointed at this org

Serves OAuth 2.0 (`/services/oauth2/token`: password, client_credentials with the secret in
the form or as HTTP Basic, refresh_token, and the JWT bearer flow signed with the key of a
registered certificate, `sim.jwt_key_path`; every answer carries `id`, the identity URL
`<login>/id/<orgId>/<userId>`, and all but JWT a real `signature`), the identity URL itself
and OpenID Connect `/services/oauth2/userinfo` (`user_id`), and
the SOAP partner `login()` (`/services/Soap/u/<ver>`, reachable from simple-salesforce through
`SalesforceLogin(scratch_url=sim.login_url)`) and `merge()` (merge.py: victims deleted with
`MasterRecordId`, their activities reparented; `sim.merge` for a merge in the UI;
`duplicates=True` seeds the labelled duplicates of `adapters/seeded_people.py`),
`/services/data/vXX.X/` query and queryAll (deleted records and archived Tasks and Events
too, subqueries included; `org.archive`) +
nextRecordsUrl (snapshot locators, 2,000 rows per page, `page_size` to page a small org;
relationship queries: child-to-parent paths and parent-to-child subqueries whose child rows
count toward the page and whose cut child sets page through locators of their own, see
`results.py`), sObject
Collections (POST / PATCH / DELETE, 200 records, `allOrNone`, per-record results in order) and
their upsert by external id (PATCH `composite/sobjects/<type>/<field>`, results with
`created`), single-record CRUD and upsert / lookup by external id, unique fields
(DUPLICATE_VALUE), required fields (REQUIRED_FIELD_MISSING), create defaults (Lead Status,
Task Status and Priority from their picklists; OwnerId the creator), converted leads
refusing updates and tasks (CANNOT_UPDATE_CONVERTED_LEAD; `sim.convert_lead`), describe global,
sObject basic information, `sobjects/<type>/describe` (with `externalId` / `unique`),
`sobjects/<type>/updated` and `/deleted`, `/composite` (`resources.py`), `limits`,
`Sforce-Limit-Info` on every answer, the daily allocation (403 REQUEST_LIMIT_EXCEEDED),
JSON-list error bodies, 414 for over-long URIs and 431 for a URI plus headers over 16,384
bytes, 18-character ids with their real checksum (`ids.py`), a SOQL subset (`soql.py`, with
`COUNT()`) and queued faults (`faults.py`). Every write through the API stamps
`CreatedById` / `LastModifiedById` with the API user (`org.integration_user`); a person's edit
(`touch`), `simulate_engagement` and the seeded history stamp another user (`org.ui_user`).
Bulk API 2.0 query and ingest jobs, and Get All Jobs listing every user's (`sim.bulk.submit`
closes one as another user): `bulk.py`. Not simulated: Bulk API 1.0; in SOQL,
relationship paths outside SELECT, polymorphic paths, semi-joins and aggregates beyond a
lone COUNT() (`soql.py`).
"""

from .cli import main
from .simulator import SalesforceSimulator

__all__ = ["SalesforceSimulator", "main"]
