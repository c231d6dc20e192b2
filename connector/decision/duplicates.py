"""Which records are one person: duplicate groups with the rule that matched and a confidence.

Records are compared only inside blocks that can match (same mailbox, same phone number,
same organisation, same name), so the cost grows with the block sizes, not with N squared.
Edges are joined strongest first, so a group's confidence is that of its weakest necessary
link (the bottleneck of a maximum spanning tree): a chain of a strong email match and a weak
name match is reported at the weak match's confidence, with both rules.

A chain must not make one person of two the rules tell apart: a group never holds two
records whose names disagree (unless they share a mailbox), and a record that matches two
such records equally strongly (a nameless record on a switchboard's number) joins neither,
since which one it is would be a guess.

The connector never merges records: a group suggests a survivor, the person's decision is
shared, and its follow-up tasks go to the survivor only.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import combinations, groupby
from typing import Generic, TypeVar

from crm_qualify.connector.decision.identity_keys import (
    IdentityKeys,
    identity_keys,
    normalise_company,
)
from crm_qualify.connector.decision.identity_rules import NAME_THRESHOLD_FLOOR, IdentityRules
from crm_qualify.connector.model import Contact
from rapidfuzz import fuzz, process

K = TypeVar("K")

RecordKey = tuple[str, str]
Named = tuple[str | None, str]
"""A record's mailbox (if any) and name: all that tells it apart from another."""

EMAIL_CONFIDENCE = 0.99
PHONE_AND_NAME_CONFIDENCE = 0.95
PHONE_ONLY_CONFIDENCE = 0.7
SAME_NAME_RELATED_COMPANY_CONFIDENCE = 0.85
GROUPING_VERSION = 3
"""Raised when a code change moves who is one person (2: names one letter longer and records
that match two people told apart no longer group; 3: a role mailbox matches no one by
mailbox): persons are made as records are read, so the next run reads and regroups every
record, as for a changed `[identity]` setting."""
PROFILE_FIELDS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "title",
    "company",
    "industry",
    "employees",
    "country",
    "owner_id",
)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One record as duplicate detection sees it (slots: a run's identity look-up makes one
    for every record of the blocks it compares, thousands at a time)."""

    key: RecordKey
    keys: IdentityKeys
    company: str | None
    created_at: datetime | None
    completeness: int

    @classmethod
    def of(cls, contact: Contact, rules: IdentityRules) -> Candidate:
        return cls(
            key=(contact.object_type, contact.id),
            keys=identity_keys(contact, rules),
            company=normalise_company(contact.company),
            created_at=contact.created_at,
            completeness=sum(getattr(contact, name) not in (None, "") for name in PROFILE_FIELDS)
            + len(contact.events),
        )


@dataclass(frozen=True)
class Match:
    a: RecordKey
    b: RecordKey
    rule: str
    confidence: float


@dataclass
class DuplicateGroup:
    """Records of one person. `id` is stable while the group grows: its oldest member."""

    id: str
    members: list[RecordKey]
    survivor: RecordKey
    rules: list[str]
    confidence: float
    matches: list[Match] = field(default_factory=list)


class DisjointSets(Generic[K]):
    """Keys joined into groups (union-find with path halving). Written here rather than taken
    from scipy (`scipy.cluster.hierarchy.DisjointSet`): importing that costs every sync about
    50 MB of resident memory, for a dozen lines."""

    def __init__(self, keys: Iterable[K] = ()) -> None:
        self._parent: dict[K, K] = {key: key for key in keys}

    def __contains__(self, key: object) -> bool:
        return key in self._parent

    def root(self, key: K) -> K:
        parent = self._parent
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    def join(self, a: K, b: K) -> bool:
        """`b`'s group joins `a`'s; False when they were one group already."""
        a, b = self.root(a), self.root(b)
        if a == b:
            return False
        self._parent[b] = a
        return True

    def groups(self) -> list[list[K]]:
        """Every group, each key in the order it was first seen."""
        found: dict[K, list[K]] = {}
        for key in self._parent:
            found.setdefault(self.root(key), []).append(key)
        return list(found.values())


def find_groups(contacts: Iterable[Contact], rules: IdentityRules) -> list[DuplicateGroup]:
    candidates = [Candidate.of(contact, rules) for contact in contacts]
    return group_candidates(candidates, rules)


def group_candidates(candidates: Sequence[Candidate], rules: IdentityRules) -> list[DuplicateGroup]:
    by_key = {candidate.key: candidate for candidate in candidates}
    matches = sorted(find_matches(candidates, rules), key=lambda m: -m.confidence)
    joiner = _Joiner(by_key, rules.name.threshold)
    for _, tier in groupby(matches, key=lambda m: m.confidence):
        joiner.join_tier(list(tier))
    sets = joiner.sets
    members: dict[RecordKey, list[RecordKey]] = defaultdict(list)
    for key in by_key:  # a group's members in the candidates' order
        if key in sets:
            members[sets.root(key)].append(key)
    links: dict[RecordKey, list[Match]] = defaultdict(list)
    for match in joiner.joined:
        links[sets.root(match.a)].append(match)
    rules_seen: dict[RecordKey, set[str]] = defaultdict(set)
    for match in matches:
        if (top := sets.root(match.a)) == sets.root(match.b):
            rules_seen[top].add(match.rule)
    groups = [
        _group([by_key[key] for key in keys], links[top], rules_seen[top], rules)
        for top, keys in members.items()
        if len(keys) > 1
    ]
    return sorted(groups, key=lambda group: (-group.confidence, group.id))


class _Joiner:
    """Joins matches into groups, strongest first, keeping apart the records the rules tell
    apart however many matches chain them. A group is known here by the mailboxes and names
    its records carry (`Named`): whether two records are told apart depends on nothing else,
    and a mailbox shared by thousands of records carries a few dozen names."""

    def __init__(self, by_key: dict[RecordKey, Candidate], threshold: float) -> None:
        self.sets = DisjointSets[RecordKey]()
        self.joined: list[Match] = []
        self._by_key = by_key
        self._threshold = threshold
        self._named: dict[RecordKey, frozenset[Named]] = {}

    def join_tier(self, tier: list[Match]) -> None:
        """Join the matches of one confidence. A group that matches two groups told apart
        joins neither (which one it is would be a guess); a match that would put two records
        told apart in one group is left out."""
        root = self.sets.root
        links = [m for m in tier if root(m.a) != root(m.b)]
        ambiguous = self._ambiguous(links)
        for match in links:
            a, b = root(match.a), root(match.b)
            if a in ambiguous or b in ambiguous or a == b:
                continue
            if self._apart(self._names(a), self._names(b)):
                continue
            self._named[a] = self._names(a) | self._names(b)
            self._named.pop(b, None)
            self.sets.join(a, b)
            self.joined.append(match)

    def _ambiguous(self, links: list[Match]) -> set[RecordKey]:
        neighbours: dict[RecordKey, set[RecordKey]] = defaultdict(set)
        for match in links:
            a, b = self.sets.root(match.a), self.sets.root(match.b)
            neighbours[a].add(b)
            neighbours[b].add(a)
        ambiguous = set()
        for top, others in neighbours.items():
            named = {self._names(other) for other in others}
            if any(self._apart(x, y) for x, y in combinations(named, 2)):
                ambiguous.add(top)
        return ambiguous

    def _names(self, top: RecordKey) -> frozenset[Named]:
        if top not in self._named:
            keys = self._by_key[top].keys
            self._named[top] = frozenset([(keys.email, keys.name)] if keys.name else [])
        return self._named[top]

    def _apart(self, a: frozenset[Named], b: frozenset[Named]) -> bool:
        return any(_told_apart(x, y, self._threshold) for x in a for y in b)


def _told_apart(a: Named, b: Named, threshold: float) -> bool:
    """Two records whose names disagree are two people (a switchboard's Alice and Bob, Alice
    and Alicia at one employer), unless one mailbox holds both (a changed name, an initial)."""
    if a[0] is not None and a[0] == b[0]:
        return False
    return name_similarity(a[1], b[1]) < threshold


def _group(
    members: list[Candidate], links: list[Match], matched: set[str], rules: IdentityRules
) -> DuplicateGroup:
    """`links` joined the group (its confidence is their weakest); `matched` names every rule
    that matched any two of its members."""
    by_age = sorted(members, key=_age)
    if rules.survivor == "most_complete":
        survivor = max(by_age, key=lambda candidate: candidate.completeness)
    else:
        survivor = by_age[0]
    return DuplicateGroup(
        id=":".join(by_age[0].key),
        members=[candidate.key for candidate in by_age],
        survivor=survivor.key,
        rules=sorted(matched),
        confidence=round(min(match.confidence for match in links), 3),
        matches=links,
    )


def _age(candidate: Candidate) -> tuple[bool, datetime | str, RecordKey]:
    """Oldest first; records without a creation time after those with one."""
    created = candidate.created_at
    return (created is None, created.isoformat() if created else "", candidate.key)


def find_matches(candidates: Sequence[Candidate], rules: IdentityRules) -> Iterable[Match]:
    """Every pair of records a rule matches, before grouping keeps anyone apart: the records
    they connect are all a group of theirs can be decided from."""
    yield from _same_value(candidates, lambda c: c.keys.email, "email", EMAIL_CONFIDENCE)
    yield from _same_phone(candidates, rules)
    yield from _same_organisation_similar_name(candidates, rules)
    yield from _same_name_related_company(candidates, rules)


def _blocks(candidates: Sequence[Candidate], value) -> Iterable[list[Candidate]]:
    blocks: dict[str, list[Candidate]] = defaultdict(list)
    for candidate in candidates:
        if (key := value(candidate)) is not None:
            blocks[key].append(candidate)
    return (block for block in blocks.values() if len(block) > 1)


def _same_value(candidates, value, rule: str, confidence: float) -> Iterable[Match]:
    for block in _blocks(candidates, value):
        first = block[0]
        for other in block[1:]:
            yield Match(first.key, other.key, rule, confidence)


def _same_phone(candidates: Sequence[Candidate], rules: IdentityRules) -> Iterable[Match]:
    """A shared number is one person only if the names agree: a switchboard is not a person.
    With a name missing on either side it is a weaker match, which joins no one on a number
    that people told apart share (`_Joiner`)."""
    for block in _blocks(candidates, lambda c: c.keys.phone):
        for i, a in enumerate(block):
            for b in block[i + 1 :]:
                if a.keys.name is None or b.keys.name is None:
                    yield Match(a.key, b.key, "phone", PHONE_ONLY_CONFIDENCE)
                elif _name_similarity(a, b) >= rules.name.threshold:
                    yield Match(a.key, b.key, "phone+name", PHONE_AND_NAME_CONFIDENCE)


def _same_organisation_similar_name(
    candidates: Sequence[Candidate], rules: IdentityRules
) -> Iterable[Match]:
    threshold = rules.name.threshold
    named = [c for c in candidates if c.keys.name and c.keys.organisation]
    for block in _blocks(named, lambda c: c.keys.organisation):
        for i, a in enumerate(block):
            for b in block[i + 1 :]:
                similarity = name_similarity(a.keys.name or "", b.keys.name or "")
                if similarity >= threshold:
                    yield Match(a.key, b.key, "name+company", _name_confidence(similarity))


def _same_name_related_company(
    candidates: Sequence[Candidate], rules: IdentityRules
) -> Iterable[Match]:
    """The same full name where one record knows the employer by domain and the other by a
    company name that matches it (`acme.com` / `Acme Inc`), or two close company names."""
    named = [c for c in candidates if c.keys.name and (c.keys.organisation or c.company)]
    for block in _blocks(named, lambda c: c.keys.name):
        for i, a in enumerate(block):
            for b in block[i + 1 :]:
                if a.keys.organisation != b.keys.organisation and _related(
                    a, b, rules.name.company_threshold
                ):
                    yield Match(a.key, b.key, "name+company", SAME_NAME_RELATED_COMPANY_CONFIDENCE)


def _related(a: Candidate, b: Candidate, threshold: float) -> bool:
    """Two business domains that differ are two employers (`vertex-systems` is not
    `vortex-systems`); otherwise the employer names must be close."""
    orgs = (a.keys.organisation or "", b.keys.organisation or "")
    if all(org.startswith("domain:") for org in orgs):
        return False
    labels_a, labels_b = _company_labels(a), _company_labels(b)
    return any(fuzz.ratio(x, y) >= threshold for x in labels_a for y in labels_b)


def _company_labels(candidate: Candidate) -> set[str]:
    """The employer's name as far as the record tells it, spaces removed: `acme` for
    `domain:acme.com`, `acmesoftware` for company `Acme Software Inc`."""
    labels = set()
    organisation = candidate.keys.organisation or ""
    if organisation.startswith("domain:"):
        labels.add(organisation.removeprefix("domain:").split(".")[0].replace("-", ""))
    if candidate.company:
        labels.add(candidate.company.replace(" ", ""))
    return labels


def _name_similarity(a: Candidate, b: Candidate) -> float:
    return name_similarity(a.keys.name or "", b.keys.name or "")


_DIGIT = re.compile(r"\d").search
"""Compared pairwise within blocks, so a character loop here was a third of identity time."""


def name_similarity(a: str, b: str) -> float:
    """How alike two names are (0-100), word by word: the least alike word decides, so
    Alice and Alicia Brown stay two people while a typo (`Jonathon`/`Jonathan`) or the order
    of the words does not part one; a word that only adds letters to the end of the other is
    another name (`Daniel`/`Daniela`, `Paul`/`Paula`), however close `fuzz.ratio` finds them.
    Names of different lengths (a middle name) compare each word of the shorter with its
    closest word in the longer; names with digits (`Ada0001`) only match exactly."""
    words_a, words_b = a.split(), b.split()
    if _DIGIT(a) or _DIGIT(b):
        return 100.0 if sorted(words_a) == sorted(words_b) else 0.0  # `Ada0001`: not a name
    if len(words_a) > len(words_b):
        words_a, words_b = words_b, words_a
    if not words_a:
        return 0.0
    if len(words_a) < len(words_b):  # each word's counterpart: its closest in the longer
        words_b = [process.extractOne(x, words_b, scorer=fuzz.ratio)[0] for x in words_a]
    similarity = min(map(fuzz.ratio, words_a, words_b))
    if similarity >= NAME_THRESHOLD_FLOOR and any(map(_extends, words_a, words_b)):
        return 0.0  # looked for only where a threshold can match: most pairs are far apart
    return similarity


def _extends(a: str, b: str) -> bool:
    return a != b and (a.startswith(b) or b.startswith(a))


def _name_confidence(similarity: float) -> float:
    """90 -> 0.8, 100 -> 0.9: a name match at one employer is never as sure as a mailbox."""
    return round(0.9 - 0.01 * (100 - similarity), 3)
