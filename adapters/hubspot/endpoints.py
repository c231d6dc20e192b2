"""HubSpot's API as the core's concurrency needs it: classes of endpoints, their limits, and
how many records one write takes. The core (`connector.sync.concurrency.Traffic`) keeps the
requests in flight under these; `HubSpotClient.call` names the class of each request.

- `api`: every request but search, under our share of the portal's rolling 10-second burst
  limit (`requests_per_10s`; HubSpot's is 100 to 190 per app and portal by tier);
- `search`: CRM search, exempt from the burst limit but held to its own per-second limit
  (`searches_per_second`; HubSpot's is 5 per account, `SEARCHES_PER_SECOND`).

HubSpot counts a request when it arrives, which a delay on the way (a loaded machine, the
network) can push next to the requests sent after it. The core therefore also holds each
request until a window after its answer against HubSpot's own limit, so HubSpot never counts
more than 5 of our searches in a second, nor more than our burst share in 10 s
(`connector.sync.ratelimit`). For search that is the declared `ceiling` above our share: the
round trip then comes out of the margin, not out of our pace of 4 a second. The burst limit
depends on the portal's tier, so our share is held that way itself (a 0.25 s round trip costs
2.5% of a 10 s window).

Fourteen requests in flight: four for the core's fan-out reads (`concurrency.FAN_OUT`) and ten
for writes. Over a whole run the budgets, not the slots, set the pace (six writes in flight
already keep a 15-per-second share busy at 250 ms answers). But after a walk the burst window
still has room, and a first full sync's writes, which wait for the walk, leave at up to 40 a
second instead of 24. Batch update and create take 100 inputs.
"""

from __future__ import annotations

from crm_qualify.adapters.hubspot.settings import HubSpotSettings
from crm_qualify.connector.sync.concurrency import EndpointClass, Limits

API = "api"
SEARCH = "search"
IN_FLIGHT = 14
"""Requests in flight at once, reads and writes together (see above)."""
SEARCHES_PER_SECOND = 5
"""HubSpot's search limit per account (its documented limits; the simulator's default)."""
BATCH_INPUTS = 100
"""Inputs one batch update or batch create takes (`records.BATCH`)."""


def limits(settings: HubSpotSettings) -> Limits:
    return Limits(
        classes={
            API: EndpointClass(settings.requests_per_10s, window=10.0),
            SEARCH: EndpointClass(
                settings.searches_per_second, window=1.0, ceiling=SEARCHES_PER_SECOND
            ),
        },
        in_flight=IN_FLIGHT,
        write_batch=BATCH_INPUTS,
        task_batch=BATCH_INPUTS,
    )
