"""The demo organisation: two regional teams of a shop-supplies firm, each a manager and two
reps, a few hundred shops around real French towns (with their real postcodes), and the
weeks behind them: each rep's working days (Monday to Friday, 8:30 to 18:00 in the
organisation's time zone, a lunch break, driving time between shops), visits whose
summaries say what their outcome says, the follow-up tasks those summaries promise, deals
in every stage, and the visits planned for today and tomorrow. Written through the one
writer, so every record has its seq and history and syncs to phones like any other."""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from geo.distance import distance_m
from server import db
from server.auth.services import create_user
from server.core.actor import Actor
from server.core.writer import Edit, Source, Writer, writing
from server.demo import texts
from server.demo.places import Town, towns
from server.demo.texts import Words

DEMO_PASSWORD = "fieldcrm-demo"
# A French team: when the organisation's time zone is left at its default (UTC), the demo's
# working hours are Paris's.
DEMO_ZONE = "Europe/Paris"
PAST_WORKDAYS = 15  # three weeks of visits behind today
DAY_START, LAST_START, DAY_END = time(8, 30), time(17, 15), time(18, 0)
LUNCH_FROM = time(12, 0)
DRIVING_KMH = 35.0


@dataclass(frozen=True)
class Region:
    team: str
    admin1: str  # the region's code in geonames (France)
    name: str  # as an address writes it
    phone_prefix: str  # the landlines' first digits there
    manager: str
    reps: tuple[str, ...]
    accounts: int


REGIONS = (
    Region("Rhône-Alpes", "84", "Auvergne-Rhône-Alpes", "04 7", "maria", ("alice", "bruno"), 160),
    Region("Provence", "93", "Provence-Alpes-Côte d'Azur", "04 9", "paul", ("carla", "driss"), 160),
)
ADMIN = "admin"


@dataclass
class Shop:
    id: str
    name: str
    status: str
    lat: float
    lng: float
    owner: Actor
    product: str
    contacts: list[str] = field(default_factory=list)
    last_visit: date | None = None

    def words(self) -> Words:
        contact = self.contacts[0] if self.contacts else "the owner"
        first = contact.split()[0] if self.contacts else "the owner"
        return Words(contact=contact, first=first, product=self.product, shop=self.name)


class Demo:
    """Writes the demo's records as their users, through the one writer, and counts them."""

    def __init__(self, writer: Writer, rng: random.Random, zone: ZoneInfo, now: datetime):
        self.writer = writer
        self.rng = rng
        self.zone = zone
        self.now = now
        self.counts = {"accounts": 0, "visits": 0, "tasks": 0, "deals": 0}

    async def put(self, actor: Actor, table: str, fields: dict[str, Any]) -> str:
        record_id = str(uuid.uuid4())
        await self.writer.apply(actor, Edit(table, record_id, fields))
        if table in self.counts:
            self.counts[table] += 1
        return record_id

    def at(self, day: date, clock: time) -> datetime:
        """A wall-clock time of the organisation's zone, in UTC."""
        return datetime.combine(day, clock, tzinfo=self.zone).astimezone(UTC)

    @property
    def today(self) -> date:
        return self.now.astimezone(self.zone).date()

    # --- shops -----------------------------------------------------------------------

    async def shops(self, region: Region, reps: list[Actor]) -> list[Shop]:
        """The region's accounts, each rep owning one side of it (west or east), so that a
        rep's day is a drive between neighbouring towns."""
        rng = self.rng
        places = towns(region.admin1)
        weights = [t.population**0.5 for t in places]
        picked = sorted(
            (rng.choices(places, weights)[0] for _ in range(region.accounts)),
            key=lambda t: t.lng,
        )
        shops = []
        for index, town in enumerate(picked):
            owner = reps[index * len(reps) // len(picked)]
            shops.append(await self.shop(region, town, owner))
        return shops

    async def shop(self, region: Region, town: Town, owner: Actor) -> Shop:
        rng = self.rng
        surname = rng.choice(texts.SURNAMES)
        trade = rng.choice(texts.TRADES)
        name = f"{trade} {rng.choice(texts.PLACE_NAMES) if rng.random() < 0.2 else surname}"
        status = rng.choices(("prospect", "customer", "inactive"), (55, 35, 10))[0]
        lat, lng = _around(rng, town.lat, town.lng, 1.2 if town.district else 2.5)
        fields: dict[str, Any] = {
            "name": name,
            "status": status,
            "phone": f"{region.phone_prefix}{rng.randint(0, 9)} {_pairs(rng, 3)}",
            "street": f"{rng.randint(1, 120)} {rng.choice(texts.STREETS)}",
            "postal_code": rng.choice(town.postcodes),
            "city": town.name,
            "region": region.name,
            "country": "France",
            "lat": lat,
            "lng": lng,
            "owner_id": owner.user_id,
        }
        if rng.random() < 0.5:
            fields["email"] = f"contact@{_slug(name)}.example"
        shop = Shop(
            id=await self.put(owner, "accounts", fields),
            name=name,
            status=status,
            lat=lat,
            lng=lng,
            owner=owner,
            product=rng.choice(texts.PRODUCTS),
        )
        if status != "prospect" or rng.random() < 0.3:
            for _ in range(rng.choice((1, 1, 1, 2))):
                contact = f"{rng.choice(texts.FIRST_NAMES)} {surname}"
                if contact in shop.contacts:
                    continue
                await self.put(
                    owner,
                    "contacts",
                    {"account_id": shop.id, "name": contact, "title": rng.choice(texts.ROLES),
                     "phone": f"0{rng.choice('67')} {_pairs(rng, 4)}"},
                )  # fmt: skip
                shop.contacts.append(contact)
        return shop

    async def open_deal(self, shop: Shop) -> None:
        rng = self.rng
        stages = ("lead", "qualified", "proposal") if shop.status == "prospect" else (
            "qualified", "proposal", "negotiation")  # fmt: skip
        await self.deal(shop, rng.choice(stages), self.today + timedelta(days=rng.randint(7, 90)))

    async def deal(self, shop: Shop, stage: str, closes: date) -> None:
        rng = self.rng
        title = Words("", "", shop.product, shop.name).fill(rng.choice(texts.DEAL_TITLES))
        await self.put(
            shop.owner,
            "deals",
            {"account_id": shop.id, "title": title, "stage": stage,
             "amount": float(rng.randint(6, 240) * 50), "currency": "EUR",
             "close_date": closes.isoformat(), "owner_id": shop.owner.user_id},
        )  # fmt: skip

    # --- days --------------------------------------------------------------------------

    def route(self, shops: list[Shop], day: date, count: int, skip: set[str]) -> list[Shop]:
        """A day's stops: an account the rep has reason to see, then its nearest neighbours
        not seen in the last ten days, in nearest-next order."""
        rng = self.rng
        fresh = [
            s for s in shops
            if s.id not in skip and (s.last_visit is None or (day - s.last_visit).days > 10)
        ]  # fmt: skip
        if not fresh:
            return []
        weights = [{"customer": 3.0, "prospect": 2.0}.get(s.status, 0.2) for s in fresh]
        stops = [rng.choices(fresh, weights)[0]]
        left = [s for s in fresh if s is not stops[0]]
        while left and len(stops) < count:
            here = stops[-1]
            nearest = min(left, key=lambda s: distance_m(here.lat, here.lng, s.lat, s.lng))
            stops.append(nearest)
            left.remove(nearest)
        return stops

    def timetable(self, day: date, stops: list[Shop]) -> list[tuple[Shop, datetime, int]]:
        """When each stop starts (UTC) and how many minutes it takes: from 8:30 or a little
        later, driving between shops, an hour or so for lunch, nothing started after 17:15
        or running past 18:00."""
        rng = self.rng
        clock = datetime.combine(day, DAY_START, tzinfo=self.zone)
        clock += timedelta(minutes=5 * rng.randint(0, 8))
        lunched = False
        plan = []
        previous: Shop | None = None
        for shop in stops:
            if previous is not None:
                km = distance_m(previous.lat, previous.lng, shop.lat, shop.lng) / 1000
                clock += timedelta(minutes=10 + km / DRIVING_KMH * 60)
            if not lunched and clock.time() >= LUNCH_FROM:
                clock += timedelta(minutes=rng.randint(60, 80))
                lunched = True
            clock = _round_up(clock, 5)
            minutes = 5 * rng.randint(4, 9)
            if clock.time() > LAST_START or (clock + timedelta(minutes=minutes)).time() > DAY_END:
                break
            plan.append((shop, clock.astimezone(UTC), minutes))
            clock += timedelta(minutes=minutes)
            previous = shop
        return plan

    async def visit(self, shop: Shop, started: datetime, minutes: int) -> None:
        """A visit, its summary written for its outcome, and what it leads to: a note now
        and then, the follow-up task its summary promises, the deal it won or lost."""
        rng = self.rng
        weights = {
            "prospect": {"met": 45, "no_answer": 15, "follow_up": 33, "lost": 7},
            "customer": {"met": 55, "no_answer": 5, "follow_up": 25, "won": 15},
            "inactive": {"met": 35, "no_answer": 40, "lost": 25},
        }[shop.status]
        outcome = rng.choices(list(weights), list(weights.values()))[0]
        choice = rng.randrange(len(texts.SUMMARIES[outcome]))
        words = shop.words()
        vlat, vlng = _around(rng, shop.lat, shop.lng, 0.06)
        # Now and then the phone had no good fix (indoors): the visit stays unverified.
        accuracy = rng.randint(300, 900) if rng.random() < 0.05 else rng.randint(5, 35)
        visit_id = await self.put(
            shop.owner,
            "visits",
            {"account_id": shop.id, "started_at": started.isoformat(),
             "ended_at": (started + timedelta(minutes=minutes)).isoformat(),
             "lat": vlat, "lng": vlng, "accuracy_m": float(accuracy),
             "outcome": outcome, "summary": words.fill(texts.SUMMARIES[outcome][choice])},
        )  # fmt: skip
        day = started.astimezone(self.zone).date()
        shop.last_visit = max(shop.last_visit or day, day)
        if outcome in ("met", "follow_up") and rng.random() < 0.35:
            await self.put(
                shop.owner,
                "notes",
                {"account_id": shop.id, "visit_id": visit_id,
                 "body": words.fill(rng.choice(texts.NOTES))},
            )  # fmt: skip
        if outcome == "follow_up":
            await self.task(shop, words.fill(texts.FOLLOW_UPS[choice]), day, rng.randint(1, 4))
        elif outcome == "won":
            await self.deal(shop, "won", day)
            await self.task(shop, words.fill(texts.AFTER_WON), day, 1)
        elif outcome == "lost" and choice == 0:
            await self.deal(shop, "lost", day)

    async def task(self, shop: Shop, title: str, day: date, workdays_later: int) -> None:
        """A to-do for the account's rep, due a few working days after `day` in working
        hours; done when it is past, but for the odd one left overdue."""
        rng = self.rng
        due = self.at(_add_workdays(day, workdays_later), time(rng.randint(9, 16), 0))
        fields: dict[str, Any] = {
            "account_id": shop.id, "title": title, "kind": "todo", "due_at": due.isoformat(),
            "assignee_id": shop.owner.user_id,
        }  # fmt: skip
        if rng.random() < 0.5:
            fields["remind_at"] = (due - timedelta(minutes=30)).isoformat()
        if due < self.now and rng.random() < 0.85:
            fields["done"] = True
        await self.put(shop.owner, "tasks", fields)

    async def planned_day(self, shops: list[Shop], day: date, skip: set[str]) -> list[Shop]:
        """A rep's planned visits (tasks of kind `visit`) for `day`; those whose time has
        come are made (the server marks their planned visit done). The accounts planned."""
        stops = self.route(shops, day, self.rng.randint(5, 6), skip)
        plan = self.timetable(day, stops)
        for shop, start, _ in plan:
            await self.put(
                shop.owner,
                "tasks",
                {"account_id": shop.id, "title": f"Visit {shop.name}", "kind": "visit",
                 "due_at": start.isoformat(), "assignee_id": shop.owner.user_id,
                 "remind_at": (start - timedelta(minutes=30)).isoformat()},
            )  # fmt: skip
        for shop, start, minutes in plan:
            if start + timedelta(minutes=minutes) <= self.now:
                await self.visit(shop, start, minutes)
        return [shop for shop, _, _ in plan]

    async def rep_weeks(self, shops: list[Shop]) -> None:
        """A rep's last weeks, their day today and their plan for tomorrow."""
        rng = self.rng
        # Customers seen months ago, for the reports of accounts not visited lately.
        earlier: dict[date, list[Shop]] = {}
        for shop in shops:
            if shop.status != "prospect" and rng.random() < 0.6:
                day = _add_workdays(self.today, -rng.randint(PAST_WORKDAYS + 2, 110))
                earlier.setdefault(day, []).append(shop)
        for day in sorted(earlier):
            for shop, start, minutes in self.timetable(day, earlier[day]):
                await self.visit(shop, start, minutes)
        for back in range(PAST_WORKDAYS, 0, -1):
            day = _add_workdays(self.today, -back)
            stops = self.route(shops, day, rng.randint(4, 6), set())
            for shop, start, minutes in self.timetable(day, stops):
                await self.visit(shop, start, minutes)
        planned = await self.planned_day(shops, self.today, set())
        await self.planned_day(shops, self.today + timedelta(days=1), {s.id for s in planned})


async def load_demo(
    *, if_empty: bool = False, seed: int = 7, timezone: str = "UTC", now: datetime | None = None
) -> str | None:
    """Load the demo organisation; returns a summary with the logins, or None when
    `if_empty` and the database already has users. `timezone`: the organisation's (its
    working hours); `now`: when "today" is (tests)."""
    if if_empty and await db.fetch("SELECT id FROM users LIMIT 1"):
        if await db.fetch("SELECT id FROM users WHERE username = {}", ADMIN):
            names = ", ".join(r.manager + ", " + ", ".join(r.reps) for r in REGIONS)
            logins = f"{names}, {ADMIN} (password {DEMO_PASSWORD})"
            return f"demo organisation already loaded; logins {logins}"
        return None
    zone_name = demo_zone(timezone)
    rng = random.Random(seed)
    at = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    actors: dict[str, Actor] = {}
    for region in REGIONS:
        for name, role in ((region.manager, "manager"), *((r, "rep") for r in region.reps)):
            actors[name] = await _actor(name, role, region.team)
    actors[ADMIN] = await _actor(ADMIN, "admin", REGIONS[0].team)

    async with writing(Source.DEMO) as one_writer:
        demo = Demo(one_writer, rng, ZoneInfo(zone_name), at)
        for region in REGIONS:
            reps = [actors[r] for r in region.reps]
            shops = await demo.shops(region, reps)
            for shop in shops:
                if rng.random() < {"customer": 0.45, "prospect": 0.2}.get(shop.status, 0.0):
                    await demo.open_deal(shop)
            for rep in reps:
                await demo.rep_weeks([s for s in shops if s.owner is rep])
            # The manager's own to-do: a day on the road with a rep, next week.
            ride = _add_workdays(demo.today, 5)
            with_rep = rng.choice(region.reps)
            await demo.put(
                actors[region.manager],
                "tasks",
                {"title": f"Ride along with {with_rep} on {ride:%A} {ride.day} {ride:%B}",
                 "due_at": demo.at(ride, time(8, 0)).isoformat(),
                 "assignee_id": actors[region.manager].user_id},
            )  # fmt: skip
    counts = demo.counts
    logins = "\n".join(
        f"  {name:<8} {actor.role:<8} team {_team_name(actor)}" for name, actor in actors.items()
    )
    return (
        f"demo organisation loaded: {counts['accounts']} accounts, {counts['visits']} visits,"
        f" {counts['tasks']} tasks, {counts['deals']} deals (working hours in {zone_name})\n"
        f"logins (password {DEMO_PASSWORD}):\n{logins}"
    )


def demo_zone(timezone: str) -> str:
    """The zone of the demo's working hours: the organisation's, or Paris's when it is
    left at UTC."""
    return DEMO_ZONE if timezone == "UTC" else timezone


def _around(rng: random.Random, lat: float, lng: float, km: float) -> tuple[float, float]:
    distance = km * math.sqrt(rng.random())
    bearing = rng.uniform(0, 2 * math.pi)
    dlat = distance / 111.32 * math.cos(bearing)
    dlng = distance / (111.32 * math.cos(math.radians(lat))) * math.sin(bearing)
    return round(lat + dlat, 6), round(lng + dlng, 6)


def _pairs(rng: random.Random, count: int) -> str:
    return " ".join(f"{rng.randint(0, 99):02d}" for _ in range(count))


def _slug(name: str) -> str:
    import unicodedata

    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return "-".join("".join(c if c.isalnum() else " " for c in plain).split())


def _round_up(moment: datetime, minutes: int) -> datetime:
    extra = -moment.minute % minutes
    return (moment + timedelta(minutes=extra)).replace(second=0, microsecond=0)


def _add_workdays(day: date, count: int) -> date:
    """`count` working days (Monday to Friday) after `day`, or before it when negative."""
    step = 1 if count >= 0 else -1
    left = abs(count)
    while left:
        day += timedelta(days=step)
        if day.weekday() < 5:
            left -= 1
    return day


async def _actor(username: str, role: str, team: str) -> Actor:
    user_id, _ = await create_user(username, DEMO_PASSWORD, role, team)
    rows = await db.fetch("SELECT team_id FROM users WHERE id = {}", user_id)
    return Actor(user_id=user_id, username=username, role=role, team_id=str(rows[0]["team_id"]))


def _team_name(actor: Actor) -> str:
    for region in REGIONS:
        if actor.username in (region.manager, *region.reps):
            return region.team
    return REGIONS[0].team
