"""A faithful local Salesforce org for the demo, end-to-end tests and benchmarks.

    from crm_qualify.adapters.salesforce.simulator import SalesforceSimulator

    with SalesforceSimulator(records=2000, seed=1) as sim:   # TLS on 127.0.0.1:<free port>
        sim.instance_url, sim.login_url, sim.ca_bundle_path     # trust the CA via its bundle
        sim.session_id                                          # a valid session for direct use
        sim.store.records["Lead"][lead_id]                      # field -> value
        sim.stats.by_endpoint["PATCH composite/sobjects"]; sim.stats.writes
        sim.faults.add("UNABLE_TO_LOCK_ROW", path_contains="composite/sobjects")

Serves OAuth 2.0 (`/services/oauth2/token`: password, client_credentials, refresh_token) and
the SOAP partner `login()` (`/services/Soap/u/<ver>`, reachable from simple-salesforce through
`SalesforceLogin(scratch_url=sim.login_url)`), `/services/data/vXX.X/` query and queryAll +
nextRecordsUrl (snapshot locators, 2,000 per page), sObject Collections (POST / PATCH /
DELETE, 200 records, `allOrNone`, per-record results in order), single-record CRUD,
`sobjects/<type>/describe`, `limits`, `Sforce-Limit-Info` on every answer, the daily
allocation (403 REQUEST_LIMIT_EXCEEDED), JSON-list error bodies, 414 for over-long URIs and a
SOQL subset (`soql.py`). Not simulated: Bulk API, relationship queries and subqueries.
"""

from .cli import main
from .simulator import SalesforceSimulator

__all__ = ["SalesforceSimulator", "main"]
