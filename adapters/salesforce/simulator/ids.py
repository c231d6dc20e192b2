"""Salesforce record ids: 15 case-sensitive characters, and the 18-character form whose last
three characters encode which of the first fifteen are upper case, so that the id survives
case-insensitive tools.

From Salesforce's documentation: the 15 characters are cut into three blocks of five; in each
block, bit i is set when character i is an upper-case letter A-Z; the 5-bit number picks a
character of `ABCDEFGHIJKLMNOPQRSTUVWXYZ012345`. `00Q5g0000000001` (a Lead: `Q` is upper
case) ends `EAA`, `0035g0000000001` (a Contact) `AAA`.
"""

from __future__ import annotations

SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def checksum(short: str) -> str:
    """The three characters that make a 15-character id its 18-character form."""
    if len(short) != 15:
        raise ValueError(f"a Salesforce id has 15 characters before its checksum: {short!r}")
    suffix = ""
    for start in range(0, 15, 5):
        bits = sum(1 << i for i, char in enumerate(short[start : start + 5]) if "A" <= char <= "Z")
        suffix += SUFFIX_ALPHABET[bits]
    return suffix


def full_id(short: str) -> str:
    """A 15-character id with its checksum: 18 characters."""
    return short + checksum(short)


ORG_ID = full_id("00D5g0000000SIM")
"""The org's id: session ids start with its 15-character form, identity URLs carry it."""
