"""CRM adapters shipped with crm-qualify, one subpackage per CRM (each with its simulator)."""
