"""Salesforce adapter: Leads and Contacts with their activities, campaign responses and
opportunities in; stage, rating, scores, reasons and follow-up Tasks out. See README.md."""

from crm_qualify.adapters.salesforce.adapter import SalesforceAdapter

__all__ = ["SalesforceAdapter"]
