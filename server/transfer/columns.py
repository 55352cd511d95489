"""Which field each column of an imported file fills, and each cell's value as the field
takes it.

A column is known by the field's name or one of the usual aliases, with case, accents,
spaces and punctuation aside ("Code postal", "ZIP", "postcode" -> postal_code). Columns the
server keeps (team_id, phone_e164, created_at, ...: what an export writes) are ignored,
so an export re-imports; any other column is unknown, reported and left out.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from server.core.fields import SERVER, SPECS, TABLE_FIELDS

ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "accounts": {
        "id": ("id", "uuid", "record_id"),
        "name": ("name", "company", "company_name", "organisation", "organization", "account",
                 "account_name", "business", "business_name", "nom", "raison_sociale",
                 "societe", "entreprise"),
        "status": ("status", "statut"),
        "phone": ("phone", "telephone", "tel", "phone_number", "numero", "landline"),
        "email": ("email", "e_mail", "mail", "email_address", "courriel"),
        "website": ("website", "web", "site", "site_web", "url", "homepage", "www"),
        "street": ("street", "address", "address_1", "address_line_1", "street_address",
                   "adresse", "rue"),
        "city": ("city", "town", "ville", "commune", "locality"),
        "region": ("region", "state", "province", "county", "departement"),
        "postal_code": ("postal_code", "zip", "zip_code", "zipcode", "postcode", "post_code",
                        "code_postal", "cp", "plz"),
        "country": ("country", "pays", "country_code"),
        "lat": ("lat", "latitude"),
        "lng": ("lng", "lon", "long", "longitude"),
        "owner": ("owner", "owner_username", "username", "rep", "sales_rep", "commercial",
                  "assigned_to"),
        "owner_id": ("owner_id",),
    },
    "contacts": {
        "id": ("id", "uuid", "record_id"),
        "account": ("account", "company", "company_name", "organisation", "organization",
                    "account_name", "societe", "entreprise"),
        "account_id": ("account_id",),
        "name": ("name", "full_name", "contact", "contact_name", "nom", "nom_complet"),
        "title": ("title", "job_title", "position", "role", "fonction", "poste"),
        "phone": ("phone", "telephone", "tel", "mobile", "phone_number", "portable"),
        "email": ("email", "e_mail", "mail", "email_address", "courriel"),
    },
}  # fmt: skip
# What the server keeps itself (whatever field a later version adds) and the stamps.
IGNORED = {
    table: (
        *sorted(spec.name for spec in TABLE_FIELDS[table] if spec.writer == SERVER),
        *(("team_id",) if table == "accounts" else ()),
        "created_at",
        "updated_at",
    )
    for table in ("accounts", "contacts")
}
STATUS_WORDS = {"client": "customer", "inactif": "inactive", "prospect": "prospect",
                "lead": "prospect", "active": "customer"}  # fmt: skip
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def column_key(name: str) -> str:
    """A column's name as compared: no case, accents, spaces or punctuation."""
    text = unicodedata.normalize("NFKD", name.strip().casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


_LOOKUP = {
    table: {column_key(alias): target for target, names in aliases.items() for alias in names}
    for table, aliases in ALIASES.items()
}


def map_header(table: str, header: list[str]) -> tuple[dict[int, str], list[str], list[str]]:
    """{column index: target} for the columns used, the unknown columns and the ignored
    ones (as the file names them). A target named twice keeps its first column."""
    used: dict[int, str] = {}
    unknown: list[str] = []
    ignored: list[str] = []
    taken: set[str] = set()
    for index, name in enumerate(header):
        key = column_key(name)
        target = _LOOKUP[table].get(key)
        if target is not None and target not in taken:
            used[index] = target
            taken.add(target)
        elif key in IGNORED[table]:
            ignored.append(name)
        elif name.strip():
            unknown.append(name)
    return used, unknown, ignored


def cell_text(value: str) -> str | None:
    """A cell as text: trimmed, None when empty; the apostrophe an export puts before what a
    spreadsheet would run as a formula taken off again."""
    text = value.strip()
    if not text:
        return None
    if text.startswith("'") and text[1:2] and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text


def cell_value(table: str, target: str, text: str) -> Any:
    """A cell's text as the field's value (numbers with a decimal comma too, statuses by
    their usual words); raises ValueError saying why it cannot be."""
    spec = SPECS[table].get(target)
    if spec is None:
        return text
    if spec.kind == "float":
        try:
            return float(text.replace(",", ".").replace(" ", ""))
        except ValueError:
            raise ValueError("must be a number") from None
    if spec.kind == "enum":
        word = text.strip().lower()
        return STATUS_WORDS.get(word, word) if target == "status" else word
    return text
