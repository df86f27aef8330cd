"""``crm2 seed demo``: a small agency's CRM, the first screen a newcomer sees.

Four demo users (a manager and three agents, one generated password printed
once), about 50 clients with contacts, 200 deals over both pipelines' stages,
60 policies (some near renewal, some expired) and a timeline of activities.
Rows are written directly (no events): a demo is not news. Running it again
finds the demo manager and leaves everything as it is.
"""

from __future__ import annotations

import random
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from rich.console import Console
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm2_core.api import AppContext, create_user, utcnow
from crm2_deals.models import (
    Activity,
    Client,
    ClientEmail,
    Contact,
    Deal,
    LostReason,
    Pipeline,
    Policy,
    Stage,
    StageMove,
)
from crm2_deals.seed_data import (
    ACTIVITY_LINES,
    CITIES,
    COMPANIES,
    FIRST_NAMES,
    INSURERS,
    LAST_NAMES,
    POSITIONS,
    PRODUCTS,
    SOURCES,
    STREETS,
)
from crm2_deals.service.clients import search_text_for

DEMO_MANAGER = "demo-manager@example.com"
DEMO_AGENTS = tuple(f"demo-agent{i}@example.com" for i in (1, 2, 3))
FREQUENCIES = ("annual", "annual", "annual", "semi_annual", "quarterly", "monthly")


@dataclass
class DemoCounts:
    users: int = 0
    clients: int = 0
    contacts: int = 0
    deals: int = 0
    policies: int = 0
    activities: int = 0


@dataclass
class _Builder:
    """Builds the demo rows in memory; ``rows`` are added to the session at the end."""

    rng: random.Random
    now: datetime
    owners: list[uuid.UUID]
    stages: dict[uuid.UUID, list[Stage]]  # pipeline id → stages by position
    default_pipeline: uuid.UUID
    reasons: list[LostReason]
    people: list[tuple[str, str]] = field(default_factory=list)  # unique (first, last)
    rows: list[Any] = field(default_factory=list)
    counts: DemoCounts = field(default_factory=DemoCounts)

    def ago(self, max_days: int, min_days: int = 0) -> datetime:
        seconds = self.rng.randint(min_days * 86_400, max_days * 86_400)
        return self.now - timedelta(seconds=seconds)

    def entry(self, client: Client, kind: str, at: datetime, **links: Any) -> None:
        """An activity; ``subject``/``body`` default to a line of ``kind``'s word list."""
        subject, body = links.pop("text", None) or self.rng.choice(ACTIVITY_LINES[kind])
        self.rows.append(
            Activity(
                kind=kind,
                client_id=client.id,
                author_id=None if kind == "system" else client.owner_id,
                owner_id=client.owner_id,
                subject=subject,
                body=body,
                occurred_at=at,
                created_at=at,
                updated_at=at,
                **links,
            )
        )
        self.counts.activities += 1

    def system(self, client: Client, at: datetime, subject: str, body: str, **links: Any) -> None:
        self.entry(client, "system", at, text=(subject, body), **links)

    def client(self, company: str | None) -> Client:
        rng = self.rng
        first, last = self.people.pop()
        name = company or f"{first} {last}"
        ascii_name = (company or f"{first}.{last}").lower().replace("ü", "ue").replace("ä", "ae")
        slug = "".join(ch for ch in ascii_name.replace("ö", "oe") if ch.isalnum() or ch == ".")
        domain = f"{slug.replace('.', '')[:18]}.example" if company else "mail.example"
        emails = [f"{'office' if company else slug}@{domain}"]
        phones = [f"+49 30 {rng.randint(1_000_000, 9_999_999)}"]
        created = self.ago(720, 200)
        row = Client(
            kind="company" if company else "person",
            name=name,
            emails=emails,
            phones=phones,
            tax_id=f"DE{rng.randint(100_000_000, 999_999_999)}" if company else None,
            address=f"{rng.choice(STREETS)} {rng.randint(1, 180)}, {rng.choice(CITIES)}",
            tags=rng.sample(
                ["vip", "sme", "retail", "referral", "fleet", "family"], k=rng.randint(0, 2)
            ),
            owner_id=rng.choice(self.owners),
            search_text=search_text_for(name, emails, phones),
            created_at=created,
            updated_at=self.ago(60),
        )
        self.rows.append(row)
        self.rows.extend(ClientEmail(client_id=row.id, email=e) for e in emails)
        self.counts.clients += 1
        if company:
            for _ in range(rng.randint(1, 3)):
                cf, cl = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
                self.rows.append(
                    Contact(
                        client_id=row.id,
                        name=f"{cf} {cl}",
                        position=rng.choice(POSITIONS),
                        email=f"{cf.lower()}.{cl.lower()}@{domain}",
                        phone=f"+49 30 {rng.randint(1_000_000, 9_999_999)}",
                    )
                )
                self.counts.contacts += 1
        return row

    def deal(self, client: Client) -> Deal:
        rng = self.rng
        pipelines = list(self.stages)
        renewal = [p for p in pipelines if p != self.default_pipeline]
        pipeline = rng.choice(renewal) if renewal and rng.random() < 0.25 else self.default_pipeline
        stages = self.stages[pipeline]
        open_stages = [s for s in stages if s.kind == "open"]
        roll = rng.random()
        kind = "won" if roll < 0.2 else "lost" if roll < 0.32 else "open"
        target = (
            next(s for s in stages if s.kind == kind) if kind != "open" else rng.choice(open_stages)
        )
        path = (
            [s for s in open_stages if s.position <= target.position]
            if kind != "lost"
            else (open_stages[: rng.randint(1, len(open_stages))])
        )
        if kind != "open":
            path.append(target)
        product = rng.choice(PRODUCTS)
        moved = created = self.ago(300, 20)
        step = (self.now - created) / (len(path) + 1)
        deal_id = uuid.uuid4()
        previous: Stage | None = None
        for stage in path:
            at = moved + step * rng.uniform(0.3, 1.0) if previous else moved
            self.rows.append(
                StageMove(
                    deal_id=deal_id,
                    from_stage_id=previous.id if previous else None,
                    to_stage_id=stage.id,
                    moved_by=client.owner_id,
                    moved_at=at,
                    seconds_in_previous=int((at - moved).total_seconds()) if previous else None,
                )
            )
            previous, moved = stage, at
        reason = rng.choice(self.reasons) if kind == "lost" and self.reasons else None
        value = rng.randint(product[2] // 2, product[2] * 3)
        row = Deal(
            id=deal_id,
            title=f"{product[0]} for {client.name}",
            client_id=client.id,
            pipeline_id=pipeline,
            stage_id=target.id,
            status=kind,
            value_minor=value * 100,
            currency="EUR",
            owner_id=client.owner_id,
            source=rng.choice(SOURCES),
            expected_close_date=(created + timedelta(days=rng.randint(20, 120))).date(),
            lost_reason_id=reason.id if reason else None,
            lost_reason=reason.name if reason else None,
            closed_at=moved if kind != "open" else None,
            stage_entered_at=moved,
            created_at=created,
            updated_at=moved,
        )
        self.rows.append(row)
        self.counts.deals += 1
        if kind == "won":
            self.system(client, moved, "Deal won", row.title, deal_id=row.id)
        elif kind == "lost":
            self.system(client, moved, "Deal lost", row.lost_reason or "", deal_id=row.id)
        return row

    def policy(
        self,
        client: Client,
        deal: Deal | None,
        status: str,
        end: date,
        numbers: set[tuple[str, str]],
    ) -> None:
        rng = self.rng
        insurer = rng.choice(INSURERS)
        number = f"{insurer[:2].upper()}-{rng.randint(10_000_000, 99_999_999)}"
        while (insurer, number) in numbers:
            number = f"{insurer[:2].upper()}-{rng.randint(10_000_000, 99_999_999)}"
        numbers.add((insurer, number))
        product = rng.choice(PRODUCTS)
        start = end - timedelta(days=365)
        issued = datetime.combine(start, datetime.min.time(), tzinfo=self.now.tzinfo)
        issued = min(issued, self.now - timedelta(days=1))
        row = Policy(
            number=number,
            insurer=insurer,
            client_id=client.id,
            deal_id=deal.id if deal else None,
            product=product[0],
            premium_minor=rng.randint(product[1] // 2, product[1] * 2) * 100 + rng.choice((0, 50)),
            currency="EUR",
            payment_frequency=rng.choice(FREQUENCIES),
            start_date=start,
            end_date=end,
            status=status,
            owner_id=client.owner_id,
            created_at=issued,
            updated_at=issued,
        )
        self.rows.append(row)
        self.counts.policies += 1
        links = {"policy_id": row.id, "deal_id": row.deal_id}
        if status != "draft":
            self.system(
                client, issued, "Policy issued", f"{insurer} {number} ({product[0]})", **links
            )
        if status == "cancelled":
            self.system(client, self.ago(60), "Policy cancelled", f"{insurer} {number}", **links)
        if status == "expired":
            at = datetime.combine(
                end + timedelta(days=1), datetime.min.time(), tzinfo=self.now.tzinfo
            )
            self.system(client, at, "Policy expired", f"ended on {end}", **links)
        self.entry(client, "email", issued + timedelta(hours=2), **links)


# -- the data set ----------------------------------------------------------------------

ORDER = (Client, ClientEmail, Contact, Deal, StageMove, Policy, Activity)


async def _user_id(session: AsyncSession, email: str) -> uuid.UUID | None:
    from crm2_core.api import User

    return (await session.execute(select(col(User.id)).where(col(User.email) == email))).scalar()


async def _demo_users(context: AppContext, session: AsyncSession, password: str) -> list[uuid.UUID]:
    """The manager first, then the agents."""
    people = [(DEMO_MANAGER, "Dana Demo", "manager")] + [
        (email, f"Agent {email[10]} Demo", "agent") for email in DEMO_AGENTS
    ]
    ids = []
    for email, name, role in people:
        ids.append(
            await create_user(
                context, session, email=email, password=password, full_name=name, roles=[role]
            )
        )
    return ids


def _policy_plan(rng: random.Random, today: date) -> list[tuple[str, date]]:
    """60 policies: 10 ending within 30 days, 8 expired, 5 drafts, 4 cancelled, 33 later."""

    def ends(status: str, n: int, lo: int, hi: int) -> list[tuple[str, date]]:
        return [(status, today + timedelta(days=rng.randint(lo, hi))) for _ in range(n)]

    return (
        ends("active", 10, 3, 30)
        + ends("expired", 8, -200, -5)
        + ends("draft", 5, 300, 365)
        + ends("cancelled", 4, 30, 300)
        + ends("active", 33, 31, 360)
    )


async def seed_demo(
    context: AppContext, *, console: Console | None = None, seed: int = 20261125
) -> DemoCounts | None:
    """Load the demo; ``None`` when it is there already."""
    console = console or Console()
    rng = random.Random(seed)
    async with context.session_factory() as session:
        if await _user_id(session, DEMO_MANAGER) is not None:
            console.print(f"deals: demo data already loaded ({DEMO_MANAGER} exists); skipped")
            return None
        stages: dict[uuid.UUID, list[Stage]] = {}
        for stage in (await session.execute(select(Stage).order_by(col(Stage.position)))).scalars():
            stages.setdefault(stage.pipeline_id, []).append(stage)
        pipelines = list((await session.execute(select(Pipeline))).scalars())
        if not pipelines or not stages:
            raise RuntimeError("no pipelines: run `crm2 migrate` first")
        default = next((p.id for p in pipelines if p.is_default), pipelines[0].id)
        reasons = list((await session.execute(select(LostReason))).scalars())
        password = secrets.token_urlsafe(12)
        users = await _demo_users(context, session, password)
        b = _Builder(rng, utcnow(), users[1:], stages, default, reasons)
        b.counts.users = len(users)
        pairs = [(f, la) for f in FIRST_NAMES for la in LAST_NAMES]
        b.people = rng.sample(pairs, 120)
        companies = rng.sample(COMPANIES, 20)
        clients = [b.client(c) for c in companies] + [b.client(None) for _ in range(30)]
        by_client: dict[uuid.UUID, list[Deal]] = {}
        for _ in range(200):
            client = rng.choice(clients)
            by_client.setdefault(client.id, []).append(b.deal(client))
        numbers: set[tuple[str, str]] = set()
        for status, end in _policy_plan(rng, b.now.date()):
            client = rng.choice(clients)
            won = [d for d in by_client.get(client.id, []) if d.status == "won"]
            b.policy(client, rng.choice(won) if won else None, status, end, numbers)
        for _ in range(150):
            client = rng.choice(clients)
            deal = rng.choice(by_client[client.id]) if client.id in by_client else None
            links = {"deal_id": deal.id} if deal and rng.random() < 0.5 else {}
            b.entry(
                client,
                rng.choice(("note", "call", "call", "meeting", "email")),
                b.ago(120),
                **links,
            )
        for model in ORDER:  # parents before children: the tables' foreign keys
            session.add_all(r for r in b.rows if type(r) is model)
            await session.flush()
        await session.commit()
    console.print(
        f"deals: demo loaded: {b.counts.clients} clients, {b.counts.contacts} contacts, "
        f"{b.counts.deals} deals, {b.counts.policies} policies, {b.counts.activities} activities"
    )
    console.print(
        f"deals: demo users {DEMO_MANAGER} (manager), {', '.join(DEMO_AGENTS)} (agents); "
        f"password (shown once): [bold]{password}[/bold]"
    )
    return b.counts


def seed(name: str, context: AppContext) -> Any:
    """``crm2_seed``: ``demo``, or ``load`` sized by CRM2_SEED_CLIENTS and CRM2_SEED_DEALS."""
    if name == "demo":
        return seed_demo(context)
    if name == "load":
        from crm2_core.api import env_count
        from crm2_deals.seed_load import seed_load

        clients = env_count("CRM2_SEED_CLIENTS", 1000, minimum=1)
        deals = env_count("CRM2_SEED_DEALS", 10000)
        return seed_load(context, clients=clients, deals=deals)
    return None
