"""Checking an import's rows in a child process (server/transfer/planning.py) plans what
checking them in this process plans: the same records created and filled, from the same
rows, with the same duplicates, errors and preview."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from server.core.phones import default_region, set_default_region
from server.transfer import columns, planning

OWNER = str(uuid.uuid4())
USERS = {"julie": OWNER}


def account(name: str, **values: Any) -> dict[str, Any]:
    row = dict.fromkeys(planning.ADDRESS + ("status", "phone", "email", "website", "lat", "lng"))
    return {**row, "id": str(uuid.uuid4()), "name": name, "owner_id": OWNER, "phone_e164": None,
            **values}  # fmt: skip


EXISTING = [
    account("Électricité Laurent", lat=45.7640, lng=4.8357, city="Lyon", country="FR"),
    account("Boulangerie Martin", phone="04 78 00 00 02", phone_e164="+33478000002"),
    account("Garage Petit", email="contact@garage-petit.fr", street="1 rue Neuve"),
    *(account(f"Shop {n}", lat=45.0 + n * 0.01, lng=4.0) for n in range(50)),
]
HEADER = ["Raison sociale", "Adresse", "Ville", "Pays", "Téléphone", "Latitude", "Longitude",
          "Email", "Commercial", "id"]  # fmt: skip
ROWS = [
    ["ELECTRICITE LAURENT SARL", "", "Lyon", "France", "", "45,76405", "4,83575", "", "", ""],
    ["Boulangerie M.", "3 place Bellecour", "", "", "+33 4 78 00 00 02", "", "", "", "", ""],
    ["Garage du Petit", "", "Lyon", "France", "", "", "", "CONTACT@garage-petit.fr", "", ""],
    ["Fleurs Roux", "5 rue Vaubecour", "Lyon", "France", "04 78 11 22 33", "", "", "", "julie",
     ""],
    ["Fleurs Roux", "", "", "", "04 78 11 22 33", "", "", "roux@fleurs.fr", "", ""],
    ["", "no name", "", "", "", "", "", "", "", ""],
    ["Optique Simon", "", "", "", "", "95", "4,8", "", "nobody", ""],
    ["By its id", "", "Paris", "France", "", "", "", "", "", EXISTING[3]["id"]],
    ["New with an id", "", "Paris", "France", "", "", "", "", "", "2f0c1f5e-0c54-4d0e-9a4b-"
     "0a3c9d2e1b7f"],
    ["Not a uuid", "", "", "", "", "", "", "", "", "42"],
    *([f"Café {n}", f"{n} rue Mercière", "Lyon", "France", f"04 72 00 {n // 100:02d} {n % 100:02d}",
       f"{45.70 + n * 0.003:.4f}" if n % 3 else "", "4,80" if n % 3 else "", "", "", ""]
      for n in range(300)),
]  # fmt: skip


def task(rows: list[list[str]], on_duplicate: str, table: str = "accounts") -> planning.Task:
    header = HEADER if table == "accounts" else CONTACT_HEADER
    used, _, _ = columns.map_header(table, header)
    numbers = list(range(2, len(rows) + 2))
    return planning.Task(table, header, numbers, rows, used, on_duplicate, None)


def comparable(planned: list[planning.Planned], report: planning.Report) -> Any:
    """The plan with the ids made for new records (random) set aside."""
    made = {p.record_id for p in planned if p.action == "create"} - {
        str(uuid.UUID(row[-1])) for row in ROWS if len(row[-1]) == 36
    }
    rows = [
        (p.number, "new" if p.record_id in made else p.record_id, p.action, p.fields, p.columns)
        + (p.geocode,)
        for p in planned
    ]
    return rows, report.saved()


async def planned_both_ways(task: planning.Task, existing: planning.Existing) -> tuple[Any, Any]:
    here = planning.Report()
    planned_here = planning._to_end(planning.plan_steps(task, existing, here))
    there = planning.Report()
    planned_there = await planning.plan_in_child(task, existing, there)
    return comparable(planned_here, here), comparable(planned_there, there)


@pytest.fixture
def french_numbers() -> Any:
    """Numbers written nationally read as French (the child is told the region too)."""
    before = default_region()
    set_default_region("FR")
    yield
    set_default_region(before)


@pytest.mark.parametrize("on_duplicate", ["skip", "update"])
async def test_accounts_are_planned_in_a_child_as_in_this_process(
    on_duplicate: str, french_numbers: Any
) -> None:
    existing = planning.Existing(USERS, EXISTING)
    here, there = await planned_both_ways(task(ROWS, on_duplicate), existing)
    assert there == here
    planned, report = here
    assert report["duplicates"] >= 2 and report["error_count"] == 4, report
    assert any(action == "update" for _, _, action, *_ in planned) == (on_duplicate == "update")
    assert any(geocode for *_, geocode in planned)


CONTACT_HEADER = ["Société", "Nom", "Fonction", "Portable", "Email"]


async def test_contacts_are_planned_in_a_child_as_in_this_process(french_numbers: Any) -> None:
    accounts = [account("Café Zoé", country="FR"), account("Twice"), account("Twice")]
    contacts = [{"id": str(uuid.uuid4()), "account_id": accounts[0]["id"], "name": "Zoé Martin",
                 "title": None, "phone": "06 12 34 56 78", "email": None}]  # fmt: skip
    rows = [
        ["Café Zoé", "Zoe Martin", "Gérante", "", "zoe@cafe.fr"],
        ["Café Zoé", "Paul", "", "+33 6 12 34 56 78", ""],
        ["Twice", "Anne", "", "", ""],
        ["Nowhere", "Luc", "", "", ""],
        [accounts[1]["id"], "Léa", "", "07 00 00 00 01", ""],
        ["Café Zoé", "", "", "", ""],
    ]
    existing = planning.Existing(USERS, accounts, contacts)
    here, there = await planned_both_ways(task(rows, "update", "contacts"), existing)
    assert there == here
    planned, report = here
    assert report["error_count"] == 3 and len(planned) == 2, (planned, report)


async def test_a_child_that_fails_is_an_error_not_a_plan() -> None:
    broken = task(ROWS, "skip")
    broken.used = {0: "name", 1: "no such field"}  # the child's check raises KeyError
    with pytest.raises(RuntimeError, match="child process"):
        await planning.plan_in_child(broken, planning.Existing(USERS, EXISTING), planning.Report())
