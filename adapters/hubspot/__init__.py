"""HubSpot adapter: contacts, engagement and deals in; lifecycle stage, scores, reasons and
follow-up tasks out. See README.md in this folder."""

from crm_qualify.adapters.hubspot.adapter import HubSpotAdapter

__all__ = ["HubSpotAdapter"]
