"""Section 9's rule: when two accounts (or two contacts) are likely the same.

Accounts: names similar once legal forms, case, accents and punctuation are set aside, and
both placed within 150 m of each other; or the same phone in E.164, the same email, or the
same website domain. Contacts: the same email or phone, or a similar name on the same
account. The PWA runs the very same rule (pwa/js/duplicates.js; tests/unit/test_duplicate_rule.py
feeds both the same pairs).

Similar names: rapidfuzz's `token_sort_ratio` of the two name keys (words sorted, then the
Indel similarity 2·LCS / (len a + len b)) at or above NAME_SIMILAR. A score in [0, 1] says how
sure: a shared phone, email or domain is strong; a similar name counts more the more alike
the names and the closer the places.

`Index` holds many records' keys (a hash per phone, email and domain; a grid of ~150 m cells
for positions), so matching a record against 100,000 costs a few lookups, not 100,000 tests.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz, process

from geo.distance import distance_lower_bound_m, distance_m

NEAR_M = 150.0
NAME_SIMILAR = 0.85
SCORES = {"phone": 0.9, "email": 0.9, "domain": 0.8}

# Legal forms and their like, set aside when names are compared (as whole words).
LEGAL_FORMS = frozenset(
    """sa sas sasu sarl eurl sci snc scop selarl eirl ei scp gie earl gaec
    gmbh ag kg ohg ug ev mbh kgaa
    ltd limited plc llp llc inc incorporated corp corporation co company cie
    bv nv vof sl slu srl spa snc sas spa sro as oy ab aps asa
    et and""".split()
)
# Hosts many unrelated businesses share: a website there says nothing about who it is.
SHARED_DOMAINS = frozenset(
    """facebook.com instagram.com linkedin.com twitter.com x.com google.com goo.gl
    sites.google.com business.site wixsite.com wordpress.com blogspot.com pagesjaunes.fr
    linktr.ee youtube.com tiktok.com""".split()
)
_PUNCTUATION = re.compile(r"[^\w\s]|_")
_UNDECOMPOSABLE = str.maketrans(
    {"ø": "o", "ł": "l", "đ": "d", "ß": "ss", "æ": "ae", "œ": "oe", "þ": "th", "ð": "d", "ı": "i"}
)
_DOMAIN = re.compile(r"^[a-z0-9.-]+\.[a-z]{2,}$")
_DOTTED = re.compile(r"\b(?:\w\.){2,}")


@functools.cache
def _combining_marks() -> dict[int, None]:
    """Every combining character, to be dropped (`str.translate`) after NFKD: accents."""
    return {c: None for c in range(sys.maxunicode + 1) if unicodedata.combining(chr(c))}


def name_key(name: str | None) -> str:
    """A name with case, accents, punctuation and legal forms set aside:
    "Électricité Laurent S.A.R.L." -> "electricite laurent"."""
    if not name:
        return ""
    text = unicodedata.normalize("NFKD", name.casefold().translate(_UNDECOMPOSABLE))
    text = text.translate(_combining_marks()).replace("&", " and ")
    # Dotted initials ("S.A.R.L.") first joined, then other punctuation separates words.
    if "." in text:
        text = _DOTTED.sub(lambda m: m.group().replace(".", ""), text)
    words = _PUNCTUATION.sub(" ", text).split()
    kept = [w for w in words if w not in LEGAL_FORMS]
    return " ".join(kept or words)


def name_similarity(a: str, b: str) -> float:
    """How alike two name keys are, in [0, 1] (rapidfuzz's token_sort_ratio / 100)."""
    if not a or not b:
        return 0.0
    return float(fuzz.token_sort_ratio(a, b)) / 100.0


def email_key(email: str | None) -> str:
    """An email as it is compared: trimmed, lower case; "" if it is not an address."""
    if not email:
        return ""
    text = email.strip().lower()
    if text.startswith("mailto:"):
        text = text[7:]
    local, at, domain = text.rpartition("@")
    return text if at and local and "." in domain else ""


def domain_key(website: str | None) -> str:
    """A website's domain: "https://www.Laurent-Elec.fr/contact" -> "laurent-elec.fr";
    "" for none, or for a host many businesses share (a Facebook page)."""
    if not website:
        return ""
    text = website.strip().lower()
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text)
    text = re.split(r"[/?#]", text, maxsplit=1)[0]
    text = text.rsplit("@", 1)[-1].split(":", 1)[0].rstrip(".")
    if text.startswith("www."):
        text = text[4:]
    if not _DOMAIN.match(text) or text in SHARED_DOMAINS:
        return ""
    return text


def phone_key(phone: str | None) -> str:
    """A contact's phone as compared when it has no E.164 form: its digits."""
    digits = re.sub(r"\D", "", phone or "")
    return digits if len(digits) >= 6 else ""


@dataclass(slots=True)
class Keys:
    """What the rule compares of one record."""

    id: str
    name: str
    lat: float | None = None
    lng: float | None = None
    phone: str = ""
    email: str = ""
    domain: str = ""
    account_id: str = ""  # contacts: similar names match on the same account only


def account_keys(row: dict[str, Any]) -> Keys:
    lat, lng = row.get("lat"), row.get("lng")
    placed = isinstance(lat, int | float) and isinstance(lng, int | float)
    return Keys(
        id=str(row.get("id") or ""),
        name=name_key(row.get("name")),
        lat=float(lat) if placed else None,  # type: ignore[arg-type]
        lng=float(lng) if placed else None,  # type: ignore[arg-type]
        phone=row.get("phone_e164") or "",
        email=email_key(row.get("email")),
        domain=domain_key(row.get("website")),
    )


def contact_keys(row: dict[str, Any], phone_e164: str | None = None) -> Keys:
    return Keys(
        id=str(row.get("id") or ""),
        name=name_key(row.get("name")),
        phone=phone_e164 or phone_key(row.get("phone")),
        email=email_key(row.get("email")),
        account_id=str(row.get("account_id") or ""),
    )


@dataclass(frozen=True)
class Match:
    score: float
    reasons: tuple[str, ...]


def compare(a: Keys, b: Keys, table: str = "accounts") -> Match | None:
    """Whether `a` and `b` are likely the same record, how sure, and why; or None."""
    reasons: list[str] = []
    scores: list[float] = []
    similarity = name_similarity(a.name, b.name)
    if table == "accounts":
        if similarity >= NAME_SIMILAR and a.lat is not None and b.lat is not None:
            assert a.lng is not None and b.lng is not None
            near = distance_lower_bound_m(a.lat, a.lng, b.lat, b.lng) <= NEAR_M
            metres = distance_m(a.lat, a.lng, b.lat, b.lng) if near else NEAR_M + 1
            if metres <= NEAR_M:
                reasons += ["name", f"distance_m={round(metres)}"]
                scores.append(similarity * (1.0 - 0.25 * metres / NEAR_M))
    elif similarity >= NAME_SIMILAR and a.account_id and a.account_id == b.account_id:
        reasons.append("name")
        scores.append(similarity * 0.9)
    for reason in ("phone", "email", "domain"):
        value = getattr(a, reason)
        if value and value == getattr(b, reason):
            reasons.append(reason)
            scores.append(SCORES[reason])
    if not reasons:
        return None
    unlikely = 1.0
    for score in scores:
        unlikely *= 1.0 - score
    return Match(round(1.0 - unlikely, 3), tuple(reasons))


CELL_DEG = 0.0015  # a grid cell: ~167 m of latitude, at least NEAR_M in either direction


def _cell(lat: float, lng: float) -> tuple[int, int]:
    # Longitude cells narrow toward the poles: widen them by 1/cos(lat) so a cell is never
    # less than NEAR_M across.
    width = CELL_DEG / max(math.cos(math.radians(min(abs(lat), 89.0))), 0.01)
    return (math.floor(lat / CELL_DEG), math.floor(lng / width))


@dataclass
class Index:
    """Many records' keys, to find the ones a record is likely the same as."""

    table: str = "accounts"
    records: dict[str, Keys] = field(default_factory=dict)
    _by_key: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    _by_cell: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    _by_account: dict[str, list[str]] = field(default_factory=dict)

    def add(self, keys: Keys) -> None:
        self.records[keys.id] = keys
        for reason in ("phone", "email", "domain"):
            value = getattr(keys, reason)
            if value:
                self._by_key.setdefault((reason, value), []).append(keys.id)
        if keys.lat is not None and keys.lng is not None:
            self._by_cell.setdefault(_cell(keys.lat, keys.lng), []).append(keys.id)
        if keys.account_id:
            self._by_account.setdefault(keys.account_id, []).append(keys.id)

    def candidates(self, keys: Keys) -> Iterator[str]:
        seen: set[str] = {keys.id}
        for reason in ("phone", "email", "domain"):
            value = getattr(keys, reason)
            for other in self._by_key.get((reason, value), ()) if value else ():
                if other not in seen:
                    seen.add(other)
                    yield other
        if self.table == "accounts" and keys.lat is not None and keys.lng is not None:
            row, column = _cell(keys.lat, keys.lng)
            # The neighbours' widths may differ from this cell's near the poles: look two
            # columns out, which covers NEAR_M at any latitude the grid handles.
            for dr in (-1, 0, 1):
                for dc in (-2, -1, 0, 1, 2):
                    for other in self._by_cell.get((row + dr, column + dc), ()):
                        if other not in seen:
                            seen.add(other)
                            yield other
        for other in self._by_account.get(keys.account_id, ()) if keys.account_id else ():
            if other not in seen:
                seen.add(other)
                yield other

    def matches(self, keys: Keys) -> list[tuple[str, Match]]:
        """The records likely the same as `keys`, the surest first."""
        found = []
        for other in self.candidates(keys):
            match = compare(keys, self.records[other], self.table)
            if match is not None:
                found.append((other, match))
        found.sort(key=lambda item: (-item[1].score, item[0]))
        return found

    def best(self, keys: Keys) -> tuple[str, Match] | None:
        found = self.matches(keys)
        return found[0] if found else None


@dataclass(frozen=True)
class Group:
    ids: list[str]
    score: float
    reasons: list[str]


# Names whose sorted words are at least this alike are compared in full (compare() then
# applies NAME_SIMILAR exactly); a point under it, so rounding never drops a pair.
_CANDIDATE_RATIO = NAME_SIMILAR * 100 - 1
_FULL_PAIRS_UP_TO = 50  # records sharing a phone, email or domain: past this, linked in a chain


def _sorted_words(name: str) -> str:
    return " ".join(sorted(name.split()))


def _name_candidates(index: Index) -> set[tuple[str, str]]:
    """Pairs whose names may be alike enough, among records that may be near enough (the
    same or a neighbouring cell; contacts: the same account). rapidfuzz compares a record's
    name with its whole neighbourhood's in one call, in C: token_sort_ratio is the ratio
    of the names' sorted words, which are sorted once here."""
    blocks: dict[Any, tuple[list[str], list[str]]] = {}  # block -> (ids, sorted words)
    if index.table == "accounts":
        # Blocks of 2 x 2 cells: a block and the 8 around it hold every cell within one
        # row and two columns of any of its cells (what Index.candidates looks at), for
        # fewer, longer lists than cell by cell.
        for (row, column), members in index._by_cell.items():
            ids, words = blocks.setdefault((row >> 1, column >> 1), ([], []))
            ids.extend(members)
            words.extend(_sorted_words(index.records[m].name) for m in members)
        around = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)]
    else:
        for account_id, members in index._by_account.items():
            blocks[account_id] = (
                list(members),
                [_sorted_words(index.records[m].name) for m in members],
            )
        around = []
    found: set[tuple[str, str]] = set()
    for block, (ids, words) in blocks.items():
        if around:
            near = [blocks.get((block[0] + dr, block[1] + dc), ([], [])) for dr, dc in around]
            near_ids = list(itertools.chain.from_iterable(n[0] for n in near))
            near_words = list(itertools.chain.from_iterable(n[1] for n in near))
        else:
            near_ids, near_words = ids, words
        for record_id, name in zip(ids, words, strict=True):
            if not name:
                continue
            alike = process.extract(
                name, near_words, scorer=fuzz.ratio, score_cutoff=_CANDIDATE_RATIO, limit=None
            )
            for _, _, position in alike:
                other = near_ids[position]
                if other != record_id:
                    found.add((record_id, other) if record_id < other else (other, record_id))
    return found


def _key_candidates(index: Index) -> set[tuple[str, str]]:
    """Pairs that share a phone, an email or a domain. Many records sharing one (a head
    office's number on every branch) are linked in a chain rather than pair by pair: they
    are one group either way."""
    found: set[tuple[str, str]] = set()
    for members in index._by_key.values():
        if len(members) < 2:
            continue
        ordered = sorted(set(members))
        if len(ordered) <= _FULL_PAIRS_UP_TO:
            found.update((a, b) for i, a in enumerate(ordered) for b in ordered[i + 1 :])
        else:
            found.update(zip(ordered, ordered[1:], strict=False))
    return found


def pairs(index: Index) -> list[tuple[str, str, Match]]:
    """Every pair of records likely the same (each pair once, the lower id first), found by
    blocking (cells and keys) rather than by testing every pair."""
    found = []
    for a, b in sorted(_name_candidates(index) | _key_candidates(index)):
        match = compare(index.records[a], index.records[b], index.table)
        if match is not None:
            found.append((a, b, match))
    return found


def groups(index: Index, limit: int) -> list[Group]:
    """Records likely the same, as groups (a record is in one group at most): every pair
    that matches joins its two groups. The surest groups first, at most `limit`."""
    parent: dict[str, str] = {}

    def root(record_id: str) -> str:
        while parent.get(record_id, record_id) != record_id:
            parent[record_id] = parent.get(parent[record_id], parent[record_id])
            record_id = parent[record_id]
        return record_id

    matched = pairs(index)
    for a, b, _ in matched:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    by_root: dict[str, tuple[set[str], float, list[str]]] = {}
    for a, b, match in matched:
        ids, score, reasons = by_root.setdefault(root(a), (set(), 0.0, []))
        ids |= {a, b}
        reasons += [r for r in match.reasons if r not in reasons]
        by_root[root(a)] = (ids, max(score, match.score), reasons)
    found = [Group(sorted(ids), score, reasons) for ids, score, reasons in by_root.values()]
    found.sort(key=lambda g: (-g.score, g.ids[0]))
    return found[:limit]


def index_of(table: str, rows: Iterable[Keys]) -> Index:
    index = Index(table=table)
    for keys in rows:
        index.add(keys)
    return index
