"""The simulation engine: a discrete-event loop over simulated time running the real offcash.

Theory of operation: ``Simulation`` builds a real network in ``DIR`` (a ``LedgerService`` on a
SQLite file: central bank, banks, customer accounts; one real ``SoftwareSecureElement`` per
person, attacker and shop-with-SE, held in memory without sealing; one real
``ReceiveOnlyTerminal`` per terminal shop), then walks the scenario hour by hour. Each hour it
collects the events that fall in it (payments drawn from the demand, syncs due, attacks, regions
coming back online) and runs them in time order, every one through the real code: payment
requests, signed payments and verified receipts between devices (``offcash.protocol`` under the
SE), syncs and redemptions settled by the ledger, vouchers and unloads. Refusals are the real
exceptions the devices raise, counted by reason. At each day's end the operator releases torn
payments and the ledger's audit must balance. After the last day every device syncs (in random
order), torn payments age out and are released, and the model's own bookkeeping (``Agent.
expected``) is compared with what each honest party holds: ``honest_unpaid`` must be 0.

Time is simulated: every call gets ``now``; only ``timing`` reads the wall clock, and it is kept
out of ``summary()`` so that one seed gives one summary. Randomness is one ``random.Random``
seeded by the scenario; keys and nonces come from the OS (they change bytes, never counts).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import heapq
import math
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.crypto.trust import TrustStore
from offcash.domain.limits import Limits
from offcash.errors import (
    InsufficientFunds,
    LimitExceeded,
    OffcashError,
    RemoteError,
    SecureElementError,
    VerificationError,
)
from offcash.ledger import LedgerService
from offcash.ledger.errors import InsufficientBalance, WalletRevoked
from offcash.protocol import messages as m
from offcash.se.software import SoftwareSecureElement
from offcash.se.state import SEState
from offcash.simulator.metrics import Metrics, backlog_drain, quantile
from offcash.simulator.model import DAY, HOUR, Agent, Calendar, Demand, Kind, MemoryStore
from offcash.simulator.scenario import LimitSet, Scenario, ScenarioError
from offcash.wallet.terminal import ReceiveOnlyTerminal

ISSUE_PER_BANK = 10**13
#: The file that marks a folder as a simulator's (so a real network's ledger is never replaced)
MARKER = ".offcash-simulation"
DETECTION_KINDS = ("double-spend", "double-unload", "reconcile")


def limits_of(s: LimitSet) -> Limits:
    """The offcash ``Limits`` of a scenario limit set."""
    return Limits(
        s.max_balance,
        s.max_payment,
        s.max_offline_payments,
        s.max_offline_value,
        s.max_offline_seconds,
    )


def reason_of(exc: OffcashError) -> str:
    """The refusal reason an exception stands for (a limit, the certificate, the balance)."""
    if isinstance(exc, LimitExceeded):
        return exc.limit.name.lower()
    if isinstance(exc, InsufficientFunds):
        return "insufficient_funds"
    if isinstance(exc, SecureElementError) and "expired" in str(exc):
        return "expired_certificate"
    if isinstance(exc, VerificationError):
        return f"rejected:{exc.rejection.name}"
    return exc.code


def worst_case(kind: str, lim: LimitSet, copies: int) -> int:
    """What one broken SE of ``kind`` can take beyond its funding under ``lim`` (docs/SIMULATOR.md):
    each clone or rolled-back replay spends at most what one SE may hold and send offline; an
    edited balance lets one SE send what the offline limits allow, from nothing."""
    bound = min(lim.max_offline_value, lim.max_offline_payments * lim.max_payment)
    if kind == "balance_edit":
        return bound
    return copies * min(lim.max_balance, bound)


def tamper(message: bytes) -> bytes:
    """What a tampering relay passes on: the message with one byte of its middle changed."""
    k = len(message) // 2
    return message[:k] + bytes([message[k] ^ 0x01]) + message[k + 1 :]


class Simulation:
    """One run of one scenario in one folder (see the module docstring)."""

    def __init__(
        self, scenario: Scenario, out: Path, progress: Callable[[str], None] | None = None
    ) -> None:
        self.sc = scenario
        self.out = out
        self.progress = progress or (lambda _: None)
        self.rng = random.Random(scenario.seed)
        # who pays whom, when and how much: a stream of its own, consumed the same way whatever
        # the outcomes, so runs of a sweep face the same payments (common random numbers)
        self.demand_rng = random.Random(f"demand-{scenario.seed}")
        self.metrics = Metrics()
        self.timing: defaultdict[str, float] = defaultdict(float)
        self.agents: list[Agent] = []
        self.by_wid: dict[bytes, Agent] = {}
        self.regions = list(scenario.population.regions)
        self.calendar = Calendar.of(scenario, self.regions)
        self.demand = Demand.of(scenario)
        self.payers: list[list[Agent]] = [[] for _ in self.regions]
        self.shops: list[list[Agent]] = [[] for _ in self.regions]
        self.attackers: list[Agent] = []
        self.members: list[list[Agent]] = [[] for _ in self.regions]
        self.queue: list[tuple[int, int, int]] = []  # (time, seq, agent index): syncs
        self.seq = 0
        self.backlog = 0
        self.backlog_outage = 0
        self.anomalies_seen = 0
        self.false_accusations = 0
        self.detected: dict[int, int] = {}  # attacker index -> detection time
        self.ledger: LedgerService
        self.issued0 = 0
        self.conserved = True
        self.settling = False
        self.csrs: dict[int, bytes] = {}  # agent index -> its SE's CSR (same key every sync)

    # --- setup ---------------------------------------------------------------------------------

    def _open_ledger(self) -> None:
        db = self.out / "ledger.db"
        marker = self.out / MARKER
        if (self.out / "offcash.json").exists() or (db.exists() and not marker.exists()):
            raise ScenarioError(
                f"{self.out} holds a network or a ledger this simulator did not make: "
                "choose another --out"
            )
        self.out.mkdir(parents=True, exist_ok=True)
        marker.write_text("a folder of offcash simulate: its ledger.db is replaced by each run\n")
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        self.ledger = LedgerService.open(f"sqlite:///{db}", workers=0)
        now = self.sc.start - DAY
        self.ledger.create_network(  # the ledger's own CAs: fresh keys in the database
            self.sc.currency,
            SignatureAlgorithm.from_name(self.sc.algorithm),
            "Central Bank",
            list(self.sc.population.banks),
            now,
        )
        for bank in self.sc.population.banks:
            self.ledger.issue(bank, ISSUE_PER_BANK, now)
        self.issued0 = self.ledger.audit().issued

    def _validity(self, limits: LimitSet) -> None:
        self.ledger.wallet_validity = dt.timedelta(hours=limits.certificate_hours)

    def setup(self) -> None:
        """Build the network and enrol every agent (the day before the run starts)."""
        started = time.perf_counter()
        self._open_ledger()
        sc, rng, now = self.sc, self.rng, self.sc.start - DAY
        pop, fraud = sc.population, sc.fraud
        shares = list(pop.regions.values())
        attackers = round(pop.people * fraud.broken_share)
        plan = (
            [Kind.PERSON] * (pop.people - attackers)
            + [Kind.ATTACKER] * attackers
            + [Kind.MERCHANT] * pop.merchants
            + [Kind.TERMINAL] * pop.terminals
        )
        for i, kind in enumerate(plan):
            region = rng.choices(range(len(shares)), weights=shares)[0]
            agent = self._enrol(i, kind, region, pop.banks[i % len(pop.banks)], now)
            self._role(agent, now)
            self._schedule(agent, sc.start + round(rng.random() * agent.sync_every))
        self.timing["setup"] += time.perf_counter() - started
        self.progress(f"network ready: {len(self.agents)} agents")

    def _enrol(self, i: int, kind: Kind, region: int, bank: str, now: int) -> Agent:
        """Open the agent's account (with its deposit) and enrol its SE or register its
        terminal with the ledger."""
        pop, fraud = self.sc.population, self.sc.fraud
        limits = self.sc.limits_for(bank, kind is Kind.MERCHANT)
        deposit = pop.account if kind in (Kind.PERSON, Kind.ATTACKER) else 0
        if kind is Kind.ATTACKER:
            deposit += limits.max_balance * (fraud.copies + 2)
        account = self.ledger.open_account(bank, f"{kind.value}-{i}")
        if deposit:
            self.ledger.distribute(account, deposit, now)
        if kind is Kind.TERMINAL:
            wid = self.ledger.register_terminal(account)
            tm = self.ledger.trust_material(wid, now)
            trust = TrustStore.create(tm.root, tm.bank_certificates, tm.crls)
            agent = Agent(i, kind, region, bank, account, wid, expected=deposit)
            agent.terminal = ReceiveOnlyTerminal(wid, self.ledger.params, trust)
        else:
            store = MemoryStore() if kind is Kind.ATTACKER else None
            root = self.ledger.authorities.central_bank.certificate_der
            se = SoftwareSecureElement(
                SoftwareSecureElement.new_state(self.ledger.params, root), store
            )
            self._validity(limits)
            self.csrs[i] = se.csr()
            enr = self.ledger.enroll(self.csrs[i], account, now, limits_of(limits))
            se.enroll(enr.certificate, enr.bank_certificates, enr.crls, now)
            agent = Agent(i, kind, region, bank, account, enr.wallet_id, se=se, store=store)
            agent.expected = deposit
        self.agents.append(agent)
        self.by_wid[agent.wid.raw] = agent
        self.members[region].append(agent)
        return agent

    def _role(self, agent: Agent, now: int) -> None:
        """Draw what the agent does: sync rhythm, straggler, attack time, replaying shop."""
        sc, rng = self.sc, self.rng
        beh, fraud = sc.behaviour, sc.fraud
        if agent.kind is Kind.PERSON:
            agent.straggler = rng.random() < sc.population.stragglers
            hours = beh.straggler_sync_hours if agent.straggler else beh.person_sync_hours
            agent.sync_every = round(hours * HOUR)
            self.payers[agent.region].append(agent)
            self._top_up(agent, now)
        elif agent.kind is Kind.ATTACKER:
            agent.fraud = fraud.kinds[len(self.attackers) % len(fraud.kinds)]
            agent.sync_every = round(beh.person_sync_hours * HOUR)
            agent.attacked_at = sc.start + round(
                (fraud.start_day + rng.random() * fraud.spread_days) * DAY
            )
            self.attackers.append(agent)
            self._top_up(agent, now)
        else:
            agent.sync_every = round(beh.merchant_sync_hours * HOUR)
            agent.replays = rng.random() < fraud.replay_share
            self.shops[agent.region].append(agent)

    def _schedule(self, agent: Agent, at: int) -> None:
        agent.next_sync = at
        self.seq += 1
        heapq.heappush(self.queue, (at, self.seq, agent.index))

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Set up, simulate every day, settle out, and return the summary."""
        started = time.perf_counter()
        self.setup()
        for day in range(self.sc.days):
            for hour in range(24):
                self._hour(day, hour)
            self._close_day(self.sc.start + (day + 1) * DAY)
            self.progress(
                f"day {day + 1}/{self.sc.days}: {self.metrics.days[-1].completed} payments"
            )
        self._settle_out(self.sc.start + self.sc.days * DAY)
        self.timing["total"] = time.perf_counter() - started
        self.ledger.close()
        return self.summary()

    def _hour(self, day: int, hour: int) -> None:
        sc, rng = self.sc, self.rng
        t0 = sc.start + day * DAY + hour * HOUR
        t1 = t0 + HOUR
        for t, region in self.calendar.restorations(t0, t1):
            self.metrics.count("outages_ended")
            members = list(self.members[region])
            rng.shuffle(members)  # everyone syncs at once, in any order
            for a in members:
                self._schedule(a, t + round(rng.random() * sc.behaviour.resync_hours * HOUR))
        events: list[tuple[int, int, str, int]] = []
        for region, people in enumerate(self.payers):
            if not people:
                continue
            for _ in range(self.demand.draw(self.demand_rng, len(people), day, hour)):
                self.seq += 1
                events.append((t0 + self.demand_rng.randrange(HOUR), self.seq, "pay", region))
        for a in self.attackers:
            if a.attacked_at is not None and t0 <= a.attacked_at < t1 and a.spent == 0:
                self.seq += 1
                events.append((a.attacked_at, self.seq, "attack", a.index))
        while self.queue and self.queue[0][0] < t1:
            at, seq, index = heapq.heappop(self.queue)
            if self.agents[index].next_sync == at:
                events.append((at, seq, "sync", index))
        events.sort()
        for at, _, what, arg in events:
            if what == "pay":
                started = time.perf_counter()
                self._random_payment(arg, at)
                self.timing["payments"] += time.perf_counter() - started
            elif what == "sync":
                self._sync_due(self.agents[arg], at)
            else:
                started = time.perf_counter()
                self._attack(self.agents[arg], at)
                self.timing["attacks"] += time.perf_counter() - started
        self.metrics.hour(self.backlog, self.backlog_outage)

    def _close_day(self, now: int) -> None:
        started = time.perf_counter()
        self.ledger.release_torn(now)
        audit = self.ledger.audit()
        ok = audit.balanced and audit.issued == self.issued0
        self.conserved = self.conserved and ok
        self._detections()
        balances = sum(
            a.se.status(now).balance
            for a in self.agents
            if a.se is not None and a.alive and a.honest
        )
        losses = sum(b.losses for b in audit.banks.values())
        self.metrics.close_day(balances, audit.customers, losses, ok)
        self.timing["audit"] += time.perf_counter() - started

    # --- payments ------------------------------------------------------------------------------

    def _random_payment(self, region: int, now: int) -> None:
        rng, beh = self.demand_rng, self.sc.behaviour
        people = self.payers[region]
        shops = self.shops[region]
        payer = people[rng.randrange(len(people))]
        to_shop = rng.random() < beh.merchant_share
        other = rng.randrange(len(shops)) if to_shop and shops else rng.randrange(len(people))
        amount = max(1, round(beh.amount_median * math.exp(beh.amount_sigma * rng.gauss())))
        payee = shops[other] if to_shop and shops else people[other]
        if payee is not payer:
            self._pay(payer, payer.se, payee, amount, now)

    def _offline(self, agent: Agent, now: int) -> bool:
        return self.calendar.offline_until(agent.region, now) is not None

    def _log(self, agent: Agent, now: int) -> None:
        """One more payment entry awaits upload in ``agent``'s device."""
        agent.pending += 1
        self.backlog += 1
        if self._offline(agent, now):
            agent.pending_outage += 1
            self.backlog_outage += 1

    def _pay(
        self,
        payer: Agent,
        se: SoftwareSecureElement | None,
        payee: Agent,
        amount: int,
        now: int,
    ) -> bool:
        """One offline payment through the real protocol; False if the payer's SE refused."""
        honest = payer.honest
        self.metrics.attempt(honest)
        if se is None or not payer.alive or not payee.alive:
            self.metrics.refuse("wallet_revoked", honest)
            return False
        device = payee.se or payee.terminal
        assert device is not None
        request = None
        if payee.kind is not Kind.PERSON:
            try:
                request = device.request(amount, now)
            except LimitExceeded as exc:
                self.metrics.refuse(reason_of(exc), honest)
                self.metrics.count(f"refused_by_payee:{payee.kind.value}:{reason_of(exc)}")
                return False
        try:
            message = (
                se.pay(request, now) if request is not None else se.pay_to(payee.wid, amount, now)
            )
        except (LimitExceeded, InsufficientFunds, SecureElementError, VerificationError) as exc:
            self.metrics.refuse(reason_of(exc), honest)
            if self._offline(payer, now):
                self.metrics.count(f"refused_during_outage:{reason_of(exc)}")
            return False
        if honest:
            payer.expected -= amount
        self._log(payer, now)
        self._deliver(payer, se, payee, message, amount, now)
        return True

    def _deliver(
        self,
        payer: Agent,
        se: SoftwareSecureElement,
        payee: Agent,
        message: bytes,
        amount: int,
        now: int,
    ) -> None:
        """Carry the signed payment to the payee (through a relay that may tamper with it)."""
        fraud, honest = self.sc.fraud, payer.honest
        data = message
        if fraud.relay_share and self.rng.random() < fraud.relay_share:
            data = tamper(message)
            self.metrics.count("relay_tampered")
        try:
            self._receive(payee, data, now)
        except RemoteError as exc:
            if data is message:
                self._torn(payer, payee, amount, reason_of(exc), honest)
                return
            self.metrics.count("relay_tampering_detected")
            if self.rng.random() >= fraud.resend_share:
                self._torn(payer, payee, amount, "tampered_not_resent", honest)
                return
            self.metrics.count("resent_after_tampering")
            try:
                self._receive(payee, message, now)
            except (RemoteError, LimitExceeded) as again:
                self._torn(payer, payee, amount, reason_of(again), honest)
                return
        except LimitExceeded as exc:
            self._torn(payer, payee, amount, reason_of(exc), honest)
            return
        payee.expected += amount
        payer.spent += amount  # what payees accepted from it
        self.metrics.complete(amount, honest)
        if self._offline(payer, now):
            self.metrics.count("completed_during_outage")
        self._log(payee, now)
        if payee.replays and payee.kind is Kind.MERCHANT:
            self._replay(payee, message, now)

    def _torn(self, payer: Agent, payee: Agent, amount: int, reason: str, honest: bool) -> None:
        """The payer signed and was debited, the payee refused: a torn payment, which
        settlement pays to the payee once the payer's log surfaces (an attacker's payment
        the payee refused is owed to nobody)."""
        if honest:
            payee.expected += amount
        self.metrics.refuse(reason, honest, debited=True)
        self.metrics.count(f"refused_by_payee:{payee.kind.value}:{reason}")

    def _receive(self, payee: Agent, data: bytes, now: int) -> None:
        if payee.se is not None:
            payee.se.receive(data, now)
        else:
            assert payee.terminal is not None
            payee.terminal.receive(data, now)

    def _replay(self, payee: Agent, message: bytes, now: int) -> None:
        """A dishonest payee shows the payment again: to itself, then to another shop."""
        assert payee.se is not None
        self.metrics.count("replays_attempted")
        try:
            again = payee.se.receive(message, now)
            self.metrics.count("replays_credited" if not again.duplicate else "replays_duplicate")
        except OffcashError:
            self.metrics.count("replays_refused")
        others = [s for s in self.shops[payee.region] if s is not payee]
        if not others:
            return
        other = others[self.rng.randrange(len(others))]
        self.metrics.count("replays_attempted")
        try:
            self._receive(other, message, now)
            self.metrics.count("replays_credited")
        except OffcashError:
            self.metrics.count("replays_refused")

    # --- syncs ---------------------------------------------------------------------------------

    def _sync_due(self, agent: Agent, now: int) -> None:
        if not agent.alive:
            return
        back = self.calendar.offline_until(agent.region, now)
        if back is not None:
            self._schedule(
                agent, back + round(self.rng.random() * self.sc.behaviour.resync_hours * HOUR)
            )
            return
        self.sync(agent, now)
        jitter = 0.8 + 0.4 * self.rng.random()
        self._schedule(agent, now + max(HOUR, round(agent.sync_every * jitter)))

    def sync(self, agent: Agent, now: int) -> None:
        """Sync ``agent``'s device with the ledger, then top up (people) or unload (shops)."""
        started = time.perf_counter()
        if agent.terminal is not None:
            self._redeem(agent, now)
        else:
            self._sync_se(agent, now)
        if not self.settling:  # the end-of-run syncs are timed as ``settle_out``
            self.metrics.sync_ms[int(1000 * (time.perf_counter() - started))] += 1
            self.timing["sync"] += time.perf_counter() - started
            self.metrics.today.syncs += 1

    def _drained(self, agent: Agent) -> None:
        self.backlog -= agent.pending
        self.backlog_outage -= agent.pending_outage
        agent.pending = agent.pending_outage = 0

    def _sync_se(self, agent: Agent, now: int) -> None:
        se = agent.se
        assert se is not None
        status = se.status(now)
        expired = status.certificate_expires is not None and now > status.certificate_expires
        up = se.sync_upload(now)
        self._validity(self.sc.limits_for(agent.bank, agent.kind is Kind.MERCHANT))
        try:
            entries = [e.encode() for e in up.entries]
            res = self.ledger.sync(up.report, entries, self.csrs[agent.index], now)
        except WalletRevoked:
            self._dead(agent, "sync_refused_revoked")
            return
        except OffcashError as exc:
            self.metrics.count(f"sync_failed:{exc.code}")
            return
        for r in res.refused:
            self.metrics.count(f"settlement_refused:{r.reason}")
        if res.ack is None or res.certificate is None:
            self._dead(agent, "revoked_at_sync")
            return
        se.apply_sync(res.ack, res.certificate, res.bank_certificates, res.crls, now)
        self._drained(agent)
        if expired and not self.settling:
            self.metrics.count("renewed_after_expiry")
        if agent.kind is Kind.MERCHANT:
            self._unload(agent, now)
        elif agent.kind is Kind.PERSON:
            self._top_up(agent, now)

    def _dead(self, agent: Agent, event: str) -> None:
        agent.alive = False
        self._drained(agent)
        self.metrics.count(event if not agent.honest else f"honest_{event}")

    def _top_up(self, agent: Agent, now: int) -> None:
        se, beh = agent.se, self.sc.behaviour
        assert se is not None
        balance = se.status(now).balance
        if balance >= beh.topup_below:
            return
        cap = self.sc.limits_of(agent.bank).max_balance
        amount = min(beh.topup_to, cap) - balance
        if amount <= 0:
            return
        try:
            voucher = self.ledger.fund(agent.wid, amount, now)
        except InsufficientBalance:  # the account ran low: take what is left
            amount = self.ledger.balance(agent.account)
            if amount <= 0:
                self.metrics.count("account_empty")
                return
            voucher = self.ledger.fund(agent.wid, amount, now)
        se.load(voucher, now)
        agent.funded += amount
        self.metrics.count("wallet_fundings")

    def _unload(self, agent: Agent, now: int) -> None:
        se = agent.se
        assert se is not None
        extra = se.status(now).balance - self.sc.behaviour.merchant_keep
        if extra <= 0:
            return
        try:
            request = se.unload(extra, now)
        except (LimitExceeded, InsufficientFunds, SecureElementError) as exc:
            self.metrics.count(f"unload_refused:{reason_of(exc)}")
            return
        self.ledger.unload(request, now)
        self.metrics.count("merchant_unloads")

    def _redeem(self, agent: Agent, now: int) -> None:
        terminal = agent.terminal
        assert terminal is not None
        held = terminal.payments_to_redeem()
        if held:
            res = self.ledger.redeem(agent.wid, held, now)
            for r in res.refused:
                self.metrics.count(f"settlement_refused:{r.reason}")
            terminal.redeemed({m.digest(p) for p in held})
            if agent.replays:
                again = self.ledger.redeem(agent.wid, held, now)
                self.metrics.count("replays_attempted", len(held))
                self.metrics.count("replays_credited", again.settled)
                self.metrics.count("replays_duplicate", again.duplicates)
                self.metrics.count("replays_refused", len(again.refused))
        self._drained(agent)
        # as `offcash terminal redeem` does: the trust material fetched anew (its verified
        # certificates with it, so what a terminal remembers does not grow with the days)
        tm = self.ledger.trust_material(agent.wid, now)
        terminal.trust = TrustStore.create(tm.root, tm.bank_certificates, tm.crls)

    # --- fraud ---------------------------------------------------------------------------------

    def _attack(self, a: Agent, now: int) -> None:
        """A broken secure element spends as much as its limits and the payees allow."""
        if not a.alive or a.se is None or a.store is None:
            return
        lim = self.sc.limits_of(a.bank)
        status = a.se.status(now)
        amount = min(lim.max_balance - status.balance, self.ledger.balance(a.account))
        if amount > 0 and not self._offline(a, now):
            a.se.load(self.ledger.fund(a.wid, amount, now), now)
            a.funded += amount
        self.metrics.count(f"attacks:{a.fraud}")
        if a.fraud == "clone":
            copies = [SoftwareSecureElement(a.store.state) for _ in range(self.sc.fraud.copies)]
            for device in [a.se, *copies]:
                self._spend_all(a, device, now)
        elif a.fraud == "rollback":
            snapshot = a.store.state
            self._spend_all(a, a.se, now)
            for _ in range(self.sc.fraud.copies):
                a.se = SoftwareSecureElement(snapshot, a.store)
                self._spend_all(a, a.se, now)
        else:
            self._unload_all(a, now)  # take the real money out first, then make some up
            state = SEState.decode(a.store.state)
            state.balance = max(lim.max_balance, lim.max_offline_value)
            a.se = SoftwareSecureElement(state.encode(), a.store)
            self._spend_all(a, a.se, now)
        self.metrics.worst_case[a.bank] += worst_case(a.fraud or "", lim, self.sc.fraud.copies)

    def _unload_all(self, a: Agent, now: int) -> None:
        """The attacker moves its SE's real balance back to its account (if online)."""
        assert a.se is not None
        balance = a.se.status(now).balance
        if balance <= 0 or self._offline(a, now):
            return
        try:
            self.ledger.unload(a.se.unload(balance, now), now)
        except OffcashError as exc:
            self.metrics.count(f"unload_refused:{reason_of(exc)}")
            return
        a.funded -= balance

    def _spend_all(self, a: Agent, device: SoftwareSecureElement, now: int) -> None:
        """Pay shops of the attacker's region, the largest amounts allowed, until refused."""
        shops = [s for s in self.shops[a.region] if s.alive] or [
            p for p in self.payers[a.region] if p.alive
        ]
        if not shops:
            return
        lim = self.sc.limits_of(a.bank)
        misses = 0
        for _ in range(lim.max_offline_payments + 10):
            amount = min(lim.max_payment, device.status(now).balance)
            if amount <= 0:
                return
            shop = shops[self.rng.randrange(len(shops))]
            before = device.status(now).counter
            self._pay(a, device, shop, amount, now)
            if device.status(now).counter == before:  # this shop refused (full): next one
                misses += 1
                if misses > 10:
                    return

    def _detections(self) -> None:
        """Read what settlement detected since the last call: who, and how long after."""
        found = self.ledger.anomalies()
        for an in found[self.anomalies_seen :]:
            self.metrics.count(f"anomalies:{an.kind}")
            if an.kind not in DETECTION_KINDS or an.wallet is None:
                continue
            agent = self.by_wid.get(an.wallet.raw)
            if agent is None or agent.honest:
                self.false_accusations += 1
                continue
            if agent.index not in self.detected and agent.attacked_at is not None:
                self.detected[agent.index] = an.time
                self.metrics.detection_hours.append((an.time - agent.attacked_at) / HOUR)
        self.anomalies_seen = len(found)

    # --- the end -------------------------------------------------------------------------------

    def _settle_out(self, now: int) -> None:
        """After the last day: every device syncs (any order), torn payments age out and are
        released, every device syncs again; then the books are checked against the model."""
        started = time.perf_counter()
        self.settling = True
        params = self.ledger.params
        for _ in range(2):
            order = [a for a in self.agents if a.alive]
            self.rng.shuffle(order)
            for a in order:
                self.sync(a, now)
            now += params.max_payment_age + params.clock_skew + 1
            self.ledger.release_torn(now)
        self._detections()
        audit = self.ledger.audit()
        self.final_ok = audit.balanced and audit.issued == self.issued0
        self.conserved = self.conserved and self.final_ok
        self.final_audit = audit
        self.final_now = now
        unpaid = overpaid = 0
        for a in self.agents:
            if not a.honest:
                continue
            have = self.ledger.balance(a.account)
            if a.se is not None and a.alive:
                have += a.se.status(now).balance
            unpaid += max(0, a.expected - have)
            overpaid += max(0, have - a.expected)
        self.honest_unpaid, self.honest_overpaid = unpaid, overpaid
        self.evidence = {
            a.index: len(self.ledger.evidence(a.wid))
            for a in self.attackers
            if a.fraud in ("clone", "rollback")
        }
        self.revoked = {a.index: self.ledger.wallet_status(a.wid) for a in self.attackers}
        self.timing["settle_out"] += time.perf_counter() - started

    def summary(self) -> dict[str, Any]:
        """Everything ``summary.json`` holds (deterministic for one seed)."""
        sc, met = self.sc, self.metrics
        out = met.summary()
        audit = self.final_audit
        banks: dict[str, Any] = {}
        fraud_by_bank: Counter[str] = Counter()
        for a in self.attackers:
            # what payees accepted that no real money in the attacker's SE backed: a clone's or
            # a rolled-back state's payments beyond what the SE really held (what is left in
            # it is real money, stranded once it is revoked), or an edited SE's beyond what it
            # was funded (what is left in it was made up)
            left = a.se.status(self.final_now).balance if a.se is not None else 0
            backed = a.funded if a.fraud == "balance_edit" else a.funded - left
            fraud_by_bank[a.bank] += max(0, a.spent - backed)
        for bank in sc.population.banks:
            pos = audit.banks.get(bank)
            banks[bank] = {
                "losses_booked": pos.losses if pos else 0,
                "worst_case": met.worst_case.get(bank, 0),
                "unbacked_payments": fraud_by_bank.get(bank, 0),
                "worst_case_per_attacker": {
                    k: worst_case(k, sc.limits_of(bank), sc.fraud.copies) for k in sc.fraud.kinds
                },
            }
        kinds = Counter(a.fraud for a in self.attackers)
        caught = Counter(a.fraud for a in self.attackers if a.index in self.detected)
        ev = met.events
        attacked = [a for a in self.attackers if a.spent > 0]
        spans = [
            (r, (b - sc.start) // HOUR, (e - sc.start) // HOUR, cause)
            for r, b, e, cause in self.calendar.spans()
        ]
        drains = backlog_drain(met.backlog_outage, [(b, e) for _, b, e, _ in spans])
        outages = [
            {
                "region": self.regions[r],
                "cause": cause,
                "start_hour": b,
                "end_hour": e,
                "backlog_peak": d["peak"],
                "drain_hours": d["drain_hours"],
            }
            for (r, b, e, cause), d in zip(spans, drains, strict=True)
        ]
        regions = Counter(self.regions[a.region] for a in self.agents)
        return {
            "scenario": sc.name,
            "seed": sc.seed,
            "currency": sc.currency,  # every amount below is an integer of its minor units
            "days": sc.days,
            "population": {
                "people": sum(a.kind is Kind.PERSON for a in self.agents),
                "stragglers": sum(a.straggler for a in self.agents),
                "attackers": len(self.attackers),
                "merchants": sum(a.kind is Kind.MERCHANT for a in self.agents),
                "terminals": sum(a.kind is Kind.TERMINAL for a in self.agents),
                "regions": {r: regions.get(r, 0) for r in self.regions},
                "banks": list(sc.population.banks),
            },
            "limits": {
                **{b: dataclasses.asdict(sc.limits_of(b)) for b in sc.population.banks},
                **({"shops": dataclasses.asdict(sc.shop_limits)} if sc.shop_limits else {}),
            },
            **out,
            "fraud": {
                "attackers": len(self.attackers),
                "by_kind": dict(sorted(kinds.items(), key=lambda kv: str(kv[0]))),
                "attacked": len(attacked),
                "detected": sum(a.index in self.detected for a in attacked),
                "revoked": sum(self.revoked[a.index] == "revoked" for a in attacked),
                "double_spent_counters": sum(self.evidence.values()),
                "double_spenders_with_evidence": sum(1 for v in self.evidence.values() if v),
                "detected_by_kind": dict(sorted(caught.items(), key=lambda kv: str(kv[0]))),
                "false_accusations": self.false_accusations,
                "banks": banks,
                "relays": {
                    "tampered": ev.get("relay_tampered", 0),
                    "detected": ev.get("relay_tampering_detected", 0),
                    "accepted": ev.get("relay_tampered", 0) - ev.get("relay_tampering_detected", 0),
                    "resent": ev.get("resent_after_tampering", 0),
                },
                "replays": {
                    k: ev.get(f"replays_{k}", 0)
                    for k in ("attempted", "duplicate", "refused", "credited")
                },
            },
            "outages": outages,
            "backlog": {
                "peak": max(met.backlog, default=0),
                "hourly": met.backlog,
                "hourly_outage": met.backlog_outage,
            },
            "settlement": {
                "suspense_at_end": audit.suspense,
                "issued": audit.issued,
                "customers": audit.customers,
                "float": audit.float,
            },
            "honest_unpaid": self.honest_unpaid,
            "honest_overpaid": self.honest_overpaid,
            "conserved": self.conserved,
        }

    def timings(self) -> dict[str, Any]:
        """Wall-clock figures of this run (not in the summary: they differ run to run)."""
        h = self.metrics.sync_ms
        return {
            "seconds": {k: round(v, 3) for k, v in sorted(self.timing.items())},
            "syncs": sum(h.values()),
            "sync_median_ms": quantile(h, 0.5),
            "sync_p99_ms": quantile(h, 0.99),
        }


def simulate(
    scenario: Scenario, out: Path, progress: Callable[[str], None] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run ``scenario`` with its network in ``out``; returns the summary and the timings."""
    sim = Simulation(scenario, out, progress)
    summary = sim.run()
    return summary, sim.timings()
