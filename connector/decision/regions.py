"""Where a phone number without a country code is read: a region (ISO 3166 alpha-2) from a
country as CRMs and configurations write it, a code or a name (`GB`, `UK`, `GBR`, `United
Kingdom`). One reading for a record's country and for `[identity.phone] default_region`, so
what a record may say a setting may say too, and a setting `phonenumbers` cannot read in is
refused when the configuration is loaded rather than matching no national number.
"""

from __future__ import annotations

import difflib
from functools import lru_cache

import phonenumbers
import pycountry

_COUNTRY_ALIASES = {"UK": "GB", "EL": "GR"}
"""Codes CRMs hold that ISO 3166 does not (the EU writes UK and EL for GB and GR)."""


@lru_cache(maxsize=512)
def region_of(country: str | None) -> str | None:
    """An ISO alpha-2 region for a country written as a code or a name (`France`, `FRA`)."""
    if not country or not country.strip():
        return None
    text = country.strip()
    if text.upper() in _COUNTRY_ALIASES:
        return _COUNTRY_ALIASES[text.upper()]
    try:
        return pycountry.countries.lookup(text).alpha_2
    except LookupError:  # a region phonenumbers knows and ISO 3166 does not yet (XK, Kosovo)
        return text.upper() if text.upper() in phonenumbers.SUPPORTED_REGIONS else None


def phone_region(text: str) -> str:
    """The region `text` names, one `phonenumbers` reads numbers in; ValueError with the
    close matches otherwise."""
    region = region_of(text)
    if region in phonenumbers.SUPPORTED_REGIONS:
        return region
    close = ", ".join(_close_matches(text.strip())) or "none close"
    raise ValueError(
        f"{text!r} is no region phone numbers can be read in (an ISO 3166 code such as US or"
        f" GB, UK for GB, or a country name); did you mean: {close}"
    )


def _close_matches(text: str) -> list[str]:
    names = {
        country.name: country.alpha_2
        for country in pycountry.countries
        if country.alpha_2 in phonenumbers.SUPPORTED_REGIONS
    }
    if len(text) <= 3:
        codes = sorted(phonenumbers.SUPPORTED_REGIONS | set(_COUNTRY_ALIASES))
        return difflib.get_close_matches(text.upper(), codes, n=3, cutoff=0.5)
    found = difflib.get_close_matches(text, list(names), n=3, cutoff=0.6)
    return [f"{name} ({names[name]})" for name in found]
