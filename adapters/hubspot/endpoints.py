"""HubSpot's API as the core's concurrency needs it: classes of endpoints, their limits, and
how many records one write takes. The core (`connector.sync.concurrency.Traffic`) keeps the
requests in flight under these; `HubSpotClient.call` names the class of each request.

- `api`: every request but search, under our share of the portal's rolling 10-second burst
  limit (`requests_per_10s`; HubSpot's is 100 to 190 per app and portal by tier);
- `search`: CRM search, exempt from the burst limit but held to its own per-second limit
  (`searches_per_second`; HubSpot's is 5 per token), paced: one search every 1 / rate s, so
  searches that arrive late next to the following ones still fit HubSpot's second.

Ten requests in flight keep a 15-per-second share busy at 250 ms answers with room to spare;
the budgets, not the slots, set the pace. Batch update and create take 100 inputs.
"""

from __future__ import annotations

from crm_qualify.adapters.hubspot.settings import HubSpotSettings
from crm_qualify.connector.sync.concurrency import EndpointClass, Limits

API = "api"
SEARCH = "search"
IN_FLIGHT = 10
BATCH_INPUTS = 100
"""Inputs one batch update or batch create takes (`records.BATCH`)."""


def limits(settings: HubSpotSettings) -> Limits:
    return Limits(
        classes={
            API: EndpointClass(settings.requests_per_10s, window=10.0),
            SEARCH: EndpointClass(settings.searches_per_second, window=1.0, paced=True),
        },
        in_flight=IN_FLIGHT,
        write_batch=BATCH_INPUTS,
        task_batch=BATCH_INPUTS,
    )
