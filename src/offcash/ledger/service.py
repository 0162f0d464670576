"""The settlement service facade: every operation of the central bank, the banks and wallets.

Theory of operation: ``LedgerService`` owns an engine and the network's parameters; each public
method is one retried database transaction (``db.transaction``) over the modules that hold the
rules (``books``, ``authority``, ``registry``, ``settle``, ``sync``, ``lost``). Times are passed in
(``now``); only the HTTP and CLI edges read a clock. ``offcash.api.client.Client`` has the same
methods over HTTP, so a wallet or the CLI syncs through either with one interface: both
implement ``offcash.wallet.Operations`` (checked by mypy).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from offcash.crypto import pki
from offcash.crypto.algorithms import SignatureAlgorithm, algorithm_of, spki
from offcash.crypto.pki import DEFAULT_WALLET_VALIDITY, csr_encryption_key, csr_public_key
from offcash.crypto.signer import SigningKey, as_signer
from offcash.crypto.trust import TrustStore
from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS, Limits
from offcash.domain.network import NetworkParams
from offcash.encoding import cbor
from offcash.errors import Rejection, ServiceUnavailable, VerificationError
from offcash.issuance import VOUCHER_VALIDITY, Bank, CentralBank
from offcash.ledger import (
    authority,
    books,
    checks,
    db,
    idempotency,
    lost,
    pool,
    registry,
    settle,
    states,
    sync,
)
from offcash.ledger import schema as s
from offcash.ledger.books import Audit
from offcash.ledger.errors import (
    ClaimNotReady,
    Conflict,
    InsufficientBalance,
    LimitReached,
    NotFound,
    UnloadRefused,
    WalletRevoked,
)
from offcash.ledger.group import GroupCommit
from offcash.ledger.reconcile import Refusal
from offcash.ledger.sync import SyncResult
from offcash.protocol import messages as m
from offcash.se.log import Entry
from offcash.wallet.settlement import NetworkInfo

DEFAULT_CLAIM_WINDOW = 30 * 24 * 3600
VOUCHER_ID_BYTES = 16
BATCH = 1000
T = TypeVar("T")


@dataclass(frozen=True)
class Enrollment:
    """What a newly enrolled SE installs."""

    wallet_id: WalletId
    certificate: bytes
    bank_certificates: list[bytes]
    crls: list[bytes]


@dataclass(frozen=True)
class TrustMaterial:
    """What a verifier needs offline: the root, the bank CAs and the current CRLs."""

    root: bytes
    bank_certificates: list[bytes]
    crls: list[bytes]


@dataclass(frozen=True)
class RedeemResult:
    """The outcome of a terminal's redemption."""

    settled: int
    amount: int
    duplicates: int
    refused: list[Refusal]


@dataclass(frozen=True)
class Anomaly:
    """Something settlement detected, with its evidence (a signed message) if any."""

    kind: str
    wallet: WalletId | None
    bank: str | None
    amount: int
    time: int
    detail: str
    evidence: bytes | None


class LedgerService:
    """The settlement service (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        claim_window: int = DEFAULT_CLAIM_WINDOW,
        workers: int | None = None,
    ) -> None:
        self.engine = engine
        self.claim_window = claim_window
        #: verification processes for large uploads (None: one per core; 0: verify inline)
        self.workers = workers
        #: payments per settlement transaction (and per pipelined verification batch)
        self.batch = BATCH
        #: how long the wallet certificates this service issues (enrolment, sync) are valid
        self.wallet_validity: dt.timedelta = DEFAULT_WALLET_VALIDITY
        self._pool: pool.VerifierPool | None = None
        self._pool_lock = threading.Lock()
        self._auth: authority.Authorities | None = None
        self._trust: TrustStore | None = None
        self._params: NetworkParams | None = None
        #: when set, syncs share transactions (``offcash.ledger.group``; the HTTP service's)
        self.group: GroupCommit | None = None

    @classmethod
    def open(
        cls,
        url: str,
        schema: str | None = None,
        claim_window: int = DEFAULT_CLAIM_WINDOW,
        workers: int | None = None,
    ) -> LedgerService:
        """Open (and migrate) the ledger database at ``url`` (SQLite path/URL or PostgreSQL);
        ``ServiceUnavailable`` if the database cannot be reached."""
        try:
            return cls(db.open_engine(url, schema), claim_window, workers)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise ServiceUnavailable(
                f"the ledger database cannot be reached: {str(exc.orig or exc).splitlines()[0]}"
            ) from exc

    def _tx(self, fn: Callable[[Connection], T], *, guard: bool = True, grouped: bool = False) -> T:
        """``fn`` in one transaction (retried), after checking (``guard``) that no other process
        migrated the network since this one loaded its CAs; with ``grouped``, in the group
        commit's transaction if there is one (``fn`` then runs in a savepoint of a transaction
        shared with others)."""
        if self._auth is None or self._params is None:
            self._warm()  # load the CAs first: never open a transaction inside another
        cached = self._params

        def run(conn: Connection) -> T:
            if guard and cached is not None:
                _check_algorithm(conn, cached)
            return fn(conn)

        try:
            if grouped and self.group is not None:
                return self.group.run(run)
            return db.transaction(self.engine, run)
        except _Stale:
            self._auth = self._trust = self._params = None  # the next call loads the new CAs
            raise ServiceUnavailable(
                "the network moved to another signature algorithm meanwhile (another process "
                "ran `network migrate`): nothing was done, retry"
            ) from None
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            # the database is down or unreachable (after db.transaction's retries)
            raise ServiceUnavailable(
                f"the ledger database cannot be reached: {str(exc.orig or exc).splitlines()[0]}"
            ) from exc

    def _tx_once(
        self, key: str | None, request: list[object], work: Callable[[Connection], bytes]
    ) -> bytes:
        """``work`` in one transaction, done at most once per idempotency ``key`` (see
        ``offcash.ledger.idempotency``); its answer, or the first run's."""
        return self._tx(lambda conn: idempotency.once(conn, key, request, lambda: work(conn)))

    def _warm(self) -> None:
        try:
            self._auth = db.transaction(self.engine, authority.load)
            self._params = db.transaction(self.engine, _load_params)
        except NotFound:
            self._auth = self._params = None

    # --- network setup (operator) --------------------------------------------------------

    def install(
        self, params: NetworkParams, central_bank: CentralBank, banks: Sequence[Bank]
    ) -> None:
        """Store an existing central bank and bank CAs (keys included) as this ledger's."""

        if authority.RETIRED in pki.common_name(central_bank.certificate.subject):
            raise Conflict(f"a central bank name may not contain {authority.RETIRED!r}")

        def go(conn: Connection) -> None:
            if conn.execute(sa.select(s.meta)).first() is not None:
                raise Conflict("the ledger already has a network")
            conn.execute(
                sa.insert(s.meta),
                [
                    {"key": "currency", "value": params.currency},
                    {"key": "algorithm", "value": params.algorithm.short},
                    {"key": "max_payment_age", "value": str(params.max_payment_age)},
                    {"key": "clock_skew", "value": str(params.clock_skew)},
                ],
            )
            authority.store_root(conn, central_bank)
            books.ensure_account(conn, books.ISSUED, "issued", None)
            books.ensure_account(conn, books.SUSPENSE, "suspense", None)
            for bank in banks:
                self._add_bank(conn, bank)

        self._tx(go)
        self._auth = None

    def create_network(
        self,
        currency: str,
        algorithm: SignatureAlgorithm,
        central_bank: str,
        banks: Sequence[str],
        now: int,
        root_key: SigningKey | None = None,
    ) -> None:
        """Create a new network with fresh CA keys (with ``root_key``, e.g. a key in an HSM
        token, the bank keys are made in the same place: ``Signer``/``KeyMaker``)."""
        if root_key is not None and as_signer(root_key).algorithm is not algorithm:
            raise ValueError("the root key's algorithm is not the network's")
        cb = CentralBank.create(central_bank, algorithm, now, root_key)
        self.install(
            NetworkParams(currency, algorithm), cb, [cb.certify_bank(b, now) for b in banks]
        )

    def add_bank(self, name: str, now: int) -> None:
        """Certify a new bank under the central bank."""
        bank = self.authorities.central_bank.certify_bank(name, now)
        self._tx(lambda conn: self._add_bank(conn, bank))
        self._auth = self._trust = None

    def migrate(self, algorithm: SignatureAlgorithm, now: int) -> NetworkParams:
        """Move the network to ``algorithm`` (docs/PROTOCOL.md, "Algorithm migration"): a new
        root and a new CA per bank of that algorithm, the old ones kept (for their CRLs) but
        issuing nothing more, and the parameters' ``legacy_until`` set to the end of the last
        old-algorithm certificate issued, so old wallets are accepted until their certificates
        expire and re-key at their next sync. Only a classical network moves, and only to
        ML-DSA (``ALGORITHM_NOT_ALLOWED``)."""
        c = s.certificates

        def go(conn: Connection) -> NetworkParams:
            _lock_algorithm(conn, exclusive=True)  # a service of another process waits
            auth, params = authority.load(conn), _load_params(conn)  # as they are now
            if authority.key_der(auth.central_bank.key).startswith(authority.HSM_REFERENCE):
                raise Conflict(
                    "the CA keys are in an HSM token, which offcash cannot have make the new "
                    f"{algorithm.short} keys: migrating would store them in the database"
                )
            last = conn.execute(sa.select(sa.func.max(c.c.not_after))).scalar()
            migrated = params.migrate(algorithm, max(now, int(last or 0)))
            root, new_with_old, old_with_new = auth.central_bank.migrate(algorithm, now)
            banks = [root.certify_bank(name, now) for name in sorted(auth.banks)]
            old = params.algorithm.short
            authority.migrate(conn, auth, root, banks, (new_with_old, old_with_new), old)
            conn.execute(
                sa.update(s.meta).where(s.meta.c.key == "algorithm").values(value=algorithm.short)
            )
            conn.execute(
                sa.insert(s.meta),
                [
                    {"key": "legacy_algorithm", "value": old},
                    {"key": "legacy_until", "value": str(migrated.legacy_until)},
                ],
            )
            return migrated

        migrated = self._tx(go, guard=False)
        self._auth = self._trust = self._params = None  # the verifier pool follows (its key)
        return migrated

    @staticmethod
    def _add_bank(conn: Connection, bank: Bank) -> None:
        if authority.RETIRED in bank.name:
            raise Conflict(f"a bank name may not contain {authority.RETIRED!r}")
        if conn.execute(sa.select(s.authorities).where(s.authorities.c.name == bank.name)).first():
            raise Conflict(f"bank {bank.name!r} exists")
        authority.store_bank(conn, bank)
        books.ensure_account(conn, books.reserve(bank.name), "reserve", bank.name)
        books.ensure_account(conn, books.float_of(bank.name), "float", bank.name)

    @property
    def authorities(self) -> authority.Authorities:
        """The CAs (cached; reloaded after changes)."""
        if self._auth is None:
            self._auth = db.transaction(self.engine, authority.load)
        return self._auth

    @property
    def params(self) -> NetworkParams:
        """The network parameters."""
        if self._params is None:
            self._params = db.transaction(self.engine, _load_params)
        return self._params

    @property
    def trust(self) -> TrustStore:
        """The settlement trust store (no CRLs; see ``checks``)."""
        if self._trust is None:
            a = self.authorities
            self._trust = checks.settlement_trust(a.central_bank.certificate_der, a.bank_ders)
        return self._trust

    # --- money (operator) ------------------------------------------------------------------

    def issue(self, bank: str, amount: int, now: int, idempotency_key: str | None = None) -> None:
        """The central bank issues ``amount`` into ``bank``'s reserves.

        With ``idempotency_key`` (here and on the other operator calls below) a retry of the
        same request takes effect once and gets the first answer (``offcash.ledger.idempotency``);
        the same key with another request is a ``Conflict``."""
        self.authorities.bank(bank)
        _positive(amount)
        legs = books.Legs()
        legs.move(books.ISSUED, books.reserve(bank), amount)

        def go(conn: Connection) -> bytes:
            books.lock(conn, books.ISSUED)  # the bound check below, then the posting
            issued = -books.holding(conn, books.ISSUED)
            if issued + amount > books.MAX_TOTAL:
                raise LimitReached(
                    f"{issued} issued: {amount} more would exceed the ledger's bound "
                    f"{books.MAX_TOTAL}"
                )
            books.post(conn, now, "issue", legs, bank)
            return b""

        self._tx_once(idempotency_key, ["issue", bank, amount], go)

    def open_account(self, bank: str, holder: str, idempotency_key: str | None = None) -> str:
        """Open a customer account at ``bank``; returns its id."""
        self.authorities.bank(bank)

        def go(conn: Connection) -> bytes:
            account = "c-" + os.urandom(8).hex()
            books.ensure_account(conn, account, "customer", bank, holder)
            return account.encode()

        return self._tx_once(idempotency_key, ["open_account", bank, holder], go).decode()

    def distribute(
        self, account: str, amount: int, now: int, idempotency_key: str | None = None
    ) -> None:
        """Move ``amount`` from the account's bank reserves to the customer account."""
        _positive(amount)

        def go(conn: Connection) -> bytes:
            _, bank = self._account(conn, account)
            reserve = books.holding(conn, books.reserve(bank))
            if reserve < amount:
                raise InsufficientBalance(
                    f"{bank}'s reserves hold {reserve}, {amount} asked: the central bank "
                    "issues more first"
                )
            legs = books.Legs()
            legs.move(books.reserve(bank), account, amount)
            books.post(conn, now, "distribute", legs, account)
            return b""

        self._tx_once(idempotency_key, ["distribute", account, amount], go)

    def balance(self, account: str) -> int:
        """What an account holds (``NotFound`` if there is no such account)."""

        def go(conn: Connection) -> int:
            if account not in books.accounts_of(conn, [account]):
                raise NotFound(f"no account {account!r}")
            return books.holding(conn, account)

        return self._tx(go)

    def audit(self) -> Audit:
        """The audit of the whole books (see ``books.Audit``)."""
        return self._tx(books.audit)

    @staticmethod
    def _account(conn: Connection, account: str) -> tuple[str, str]:
        row = books.accounts_of(conn, [account]).get(account)
        if row is None or row[0] != "customer" or row[1] is None:
            raise NotFound(f"no customer account {account!r}")
        return row[0], row[1]

    # --- wallets -----------------------------------------------------------------------------

    def enroll(
        self,
        csr: bytes,
        account: str,
        now: int,
        limits: Limits | None = None,
        idempotency_key: str | None = None,
    ) -> Enrollment:
        """Certify an SE's key for a new wallet owned by ``account`` (limits: bank default).

        A retry with the same ``idempotency_key`` answers with the same wallet and certificate
        and the CRLs current at the retry."""
        lim = limits or DEFAULT_LIMITS
        auth = self.authorities  # load outside the transaction: SQLite allows one writer
        public_key = csr_public_key(csr)  # checked once, outside the transaction
        kem = csr_encryption_key(csr)
        if algorithm_of(public_key) is not self.params.algorithm:
            raise VerificationError(
                Rejection.ALGORITHM_NOT_ALLOWED,
                f"the CSR's key is {algorithm_of(public_key).short}, the network uses "
                f"{self.params.algorithm.short}",
            )
        # a retry may carry a new CSR for the same key: the request names the key
        request: list[object] = ["enroll", account, spki(public_key), registry.encode_limits(lim)]

        def certify(conn: Connection) -> bytes:
            wid = WalletId.random()
            _, bank = self._account(conn, account)
            cert = auth.bank(bank).certify_key(
                public_key, wid, lim, 0, now, self.wallet_validity, kem
            )
            conn.execute(
                sa.insert(s.wallets).values(
                    id=wid.raw,
                    kind="se",
                    bank=bank,
                    account=account,
                    limits=registry.encode_limits(lim),
                )
            )
            authority.record_certificate(conn, wid, cert, bank, public_key)
            return cbor.encode([wid.raw, cert])

        def go(conn: Connection) -> Enrollment:
            answer = idempotency.once(conn, idempotency_key, request, lambda: certify(conn))
            wid_raw, cert = cbor.decode(answer)
            wid = WalletId(wid_raw)
            authority.record_delivery(conn, wid, now)
            return Enrollment(wid, cert, auth.bank_ders, authority.current_crls(conn))

        return self._tx(go)

    def register_terminal(self, account: str, idempotency_key: str | None = None) -> WalletId:
        """Register a receive-only terminal paying into ``account``; returns its wallet id."""

        def go(conn: Connection) -> bytes:
            wid = WalletId.random()
            _, bank = self._account(conn, account)
            conn.execute(
                sa.insert(s.wallets).values(id=wid.raw, kind="terminal", bank=bank, account=account)
            )
            return wid.raw

        return WalletId(self._tx_once(idempotency_key, ["register_terminal", account], go))

    def fund(
        self,
        wallet: WalletId,
        amount: int,
        now: int,
        idempotency_key: str | bytes | None = None,
    ) -> bytes:
        """Debit the owner's account and return a single-use load voucher for the wallet.

        ``idempotency_key`` makes a retry safe: a voucher with the id it names (``voucher_id``;
        bytes: the 16-byte voucher id itself) for this wallet is returned again, signed anew
        with its first issue time, and the account is debited once. The same key with another
        amount is a ``Conflict``."""
        _positive(amount)
        voucher_id = (
            voucher_id_of(idempotency_key) if isinstance(idempotency_key, str) else idempotency_key
        )
        if voucher_id is None:
            voucher_id = os.urandom(VOUCHER_ID_BYTES)
        elif type(voucher_id) is not bytes or len(voucher_id) != VOUCHER_ID_BYTES:
            raise Conflict(f"a voucher id is {VOUCHER_ID_BYTES} bytes")
        auth, params = self.authorities, self.params  # outside the transaction (see enroll)

        def go(conn: Connection) -> bytes:
            row = registry.get(conn, wallet, lock=True)  # the limit check below, then the debit
            key = {"wallet": wallet.raw, "id": voucher_id}
            issued = conn.execute(_EARLIER_VOUCHER, key).first()
            if issued is None:
                if row.status != "active" or row.kind != "se":
                    raise WalletRevoked(f"wallet {wallet} cannot be funded ({row.status})")
                books.lock(conn, row.account)  # the balance check, then the debit
                held = books.holding(conn, row.account)
                if held < amount:
                    raise InsufficientBalance(f"account holds {held}, {amount} asked")
                # refuse before debiting what the SE would refuse to load (no money in limbo)
                limit = registry.decode_limits(row.limits).max_balance
                accounted = settle.available(conn, wallet.raw)
                if accounted + amount > limit:
                    raise LimitReached(
                        f"wallet {wallet} holds {accounted} by the ledger's books: {amount} more "
                        f"would exceed its certified max_balance {limit}"
                    )
                values = {"amount": amount, "issued_at": now, "expires": now + VOUCHER_VALIDITY}
                new = conn.execute(_NEW_VOUCHER[conn.dialect.name], {**key, **values}).first()
                if new is not None:
                    legs = books.Legs()
                    legs.move(row.account, books.float_of(row.bank), amount)
                    books.post(conn, now, "fund", legs, str(wallet))
                    return auth.bank(row.bank).voucher(
                        wallet, amount, params.currency, now, voucher_id
                    )
                # a concurrent retry inserted it first (and committed): answer as it did
                issued = conn.execute(_EARLIER_VOUCHER, key).one()
            if int(issued.amount) != amount:
                raise Conflict(f"voucher id already used for {int(issued.amount)}, not {amount}")
            return auth.bank(row.bank).voucher(
                wallet, amount, params.currency, int(issued.issued_at), voucher_id
            )

        return self._tx(go)

    def unload(self, request: bytes, now: int) -> int:
        """Credit an SE-signed unload request to the owner's account (once); returns the amount
        (0 for a request already settled).

        The server's clock decides: the request must be made now (within ``clock_skew``) by a
        certificate valid now, else it is refused with nothing recorded (the SE's log still
        holds it: the wallet's next sync settles it). The wallet must be active, and the ledger
        pays no more than it can account for from the wallet's signed history
        (``settle.available``): anything more is refused (``UnloadRefused``) and recorded as an
        ``unload-refused`` anomaly with the request as evidence. When the request proves the SE
        broken (over its certified ``max_balance``, or a counter its last sync covered) it is
        also kept (state ``refused``, its counter taken) and the wallet revoked; otherwise the
        SE may hold value the ledger has not seen yet, and its next sync settles the request
        from its log (``offcash.ledger.reconcile``: never beyond the log's balance)."""
        sp = checks.unload(request, self.trust, self.params)
        skew = self.params.clock_skew
        if sp.time > now + skew:
            raise VerificationError(Rejection.FROM_THE_FUTURE, f"unload request time {sp.time}")
        if sp.time < now - skew:
            raise VerificationError(
                Rejection.TOO_OLD,
                f"unload request made at {sp.time}, not now ({now}): the wallet's next sync "
                "settles it",
            )
        self.trust.wallet_certificate(m.parse_unload(request).envelope.certificate_der, now)
        auth = self.authorities

        def go(conn: Connection) -> tuple[int, str | None]:
            wid = WalletId(sp.payer)
            wallet = registry.get(conn, wid, lock=True)
            held = settle.held(conn, sp)
            if held is not None and held[0] == sp.digest:  # the same request again
                return 0, "refused before" if held[1] == states.SpendState.REFUSED else None
            if wallet.status != "active" or wallet.kind != "se":
                raise WalletRevoked(f"wallet {wid} cannot unload: {wallet.kind}, {wallet.status}")
            if held is not None:  # another message with this counter: settle refuses it
                settle.settle(conn, auth, [(sp, settle.Source.UNLOAD)], now)
                return 0, f"counter {sp.counter} already used by another signed message"
            limits = registry.decode_limits(wallet.limits)
            refusal = settle.unload_refusal(conn, sp, limits.max_balance)
            if refusal is None:
                out = settle.settle(conn, auth, [(sp, settle.Source.UNLOAD)], now)
                return (sp.amount if out.new else 0), None
            why, broken = refusal
            registry.anomaly(conn, "unload-refused", why, now, sp.payer, wallet.bank, 0, sp.message)
            if broken:  # kept as evidence (its counter is taken), and the wallet revoked
                settle.settle(conn, auth, [(sp, settle.Source.REFUSED_UNLOAD)], now)
                registry.revoke(conn, auth, wid, "unload-refused", now)
            return 0, why

        amount, refused = self._tx(go)
        if refused is not None:
            raise UnloadRefused(f"unload of {sp.amount} refused: {refused}")
        return amount

    def sync(
        self, report: bytes, entries: Sequence[bytes | Entry], csr: bytes, now: int
    ) -> SyncResult:
        """Settle a wallet's SE-signed log and renew it (see ``offcash.ledger.sync``); the
        entries as ``SecureElement.sync_upload`` gives them, or encoded."""
        auth, trust, params = self.authorities, self.trust, self.params
        encoded = [e.encode() if isinstance(e, Entry) else e for e in entries]
        upload = sync.verify(trust, params, report, encoded, csr, now)
        validity = self.wallet_validity
        # sync.run locks the wallet and every payer it settles at once (in id order) first
        return self._tx(
            lambda conn: sync.run(conn, auth, trust, params, upload, now, validity), grouped=True
        )

    def redeem(self, terminal: WalletId, payments: Iterable[bytes], now: int) -> RedeemResult:
        """Settle payments a receive-only terminal accepted into its owner's account.

        The stream is read lazily and settled in batches of ``self.batch``, each its own
        transaction (every payment is an independent signed message, so a retried or resumed
        redemption settles nothing twice). An upload of at least one full batch is verified in
        the process pool (``offcash.ledger.pool``), pipelined with the database writes."""
        row = self._tx(lambda conn: registry.get(conn, terminal))
        if row.kind != "terminal":
            raise NotFound(f"{terminal} is not a terminal")
        trust, params = self.trust, self.params
        batches = _chunks(iter(payments), self.batch)
        first = next(batches, [])
        if len(first) == self.batch and self.workers != 0:
            checked = self._verifier().redeemable(chain([first], batches), terminal, now)
        else:
            checked = (
                (
                    b,
                    [
                        pool.with_message(checks.redeemable(d, trust, params, terminal, now), d)
                        for d in b
                    ],
                )
                for b in chain([first], batches)
            )
        settled = amount = duplicates = 0
        refused: list[Refusal] = []
        for batch, results in checked:
            out, refusals = self._tx(
                functools.partial(
                    self._redeem_batch, terminal=row, batch=batch, results=results, now=now
                )
            )
            settled += out.new + out.moved
            amount += out.amount
            duplicates += out.duplicates
            refused += refusals
        return RedeemResult(settled, amount, duplicates, refused)

    def _redeem_batch(
        self,
        conn: Connection,
        terminal: Row[Any],
        batch: list[bytes],
        results: list[settle.Spend | checks.Refused],
        now: int,
    ) -> tuple[settle.Outcome, list[Refusal]]:
        """Settle one verified batch (in one transaction; safe to re-run whole on a retry)."""
        tid = WalletId(bytes(terminal.id))
        spends = [r for r in results if isinstance(r, settle.Spend)]
        known = authority.revocations_known_to(conn, (sp.payer for sp in spends), tid)
        keep: list[tuple[settle.Spend, settle.Source]] = []
        refusals: list[Refusal] = []
        counterfeits: list[dict[str, object]] = []
        for r, data in zip(results, batch, strict=True):
            if isinstance(r, checks.Refused):
                refusals.append(Refusal(r.digest, r.reason))
                if r.counterfeit:
                    counterfeits.append(_counterfeit(r, data, terminal, now))
            elif r.payer in known and r.time >= known[r.payer]:
                refusals.append(Refusal(r.digest, Rejection.REVOKED.name))
            else:
                keep.append((r, settle.Source.TERMINAL))
        registry.anomalies(conn, counterfeits)
        return settle.settle(conn, self.authorities, keep, now), refusals

    def _verifier(self) -> pool.VerifierPool:
        """The process pool for this network's trust material (re-made if it changed)."""
        a, params = self.authorities, self.params
        key = pool.trust_key(a.central_bank.certificate_der, a.bank_ders, params)
        with self._pool_lock:
            if self._pool is not None and self._pool.key != key:
                self._pool.close()
                self._pool = None
            if self._pool is None:
                self._pool = pool.VerifierPool(key, self.workers)
            return self._pool

    def start_verifiers(self) -> None:
        """Start the verification processes now (else at the first large upload)."""
        if self.workers != 0:
            self._verifier().start()

    def close(self) -> None:
        """Stop the verification processes and the group commit's writer, and close the
        database connections."""
        if self.group is not None:
            self.group.close()
        with self._pool_lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
        self.engine.dispose()

    def network(self) -> NetworkInfo:
        """The network parameters and trust anchors a new wallet needs."""
        a = self.authorities
        return NetworkInfo(
            self.params, a.central_bank.certificate_der, list(a.bank_ders), a.new_with_old
        )

    def trust_material(self, wallet: WalletId | None, now: int) -> TrustMaterial:
        """Root, bank CAs and current CRLs; recorded as delivered to ``wallet`` if it is a
        receive-only terminal (which has no key to prove what it holds, so only an operator
        may say so: the HTTP route records only with the operator's credential). Nothing is
        ever recorded for an SE wallet here: what its SE holds is proved by its own signed sync
        report (the CRLs it states it holds, ``authority.record_held``)."""

        def go(conn: Connection) -> TrustMaterial:
            if wallet is not None and registry.get(conn, wallet, lock=True).kind == "terminal":
                authority.record_delivery(conn, wallet, now)
            return TrustMaterial(
                self.authorities.central_bank.certificate_der,
                self.authorities.bank_ders,
                authority.current_crls(conn),
            )

        return self._tx(go)

    # --- revocation, losses, reports ---------------------------------------------------------

    def report_lost(self, wallet: WalletId, now: int) -> None:
        """The owner reports the device lost or broken: revoke the wallet now."""

        def go(conn: Connection) -> None:
            registry.get(conn, wallet, lock=True)  # waits for a sync renewing it to commit
            registry.revoke(conn, self.authorities, wallet, "lost", now)

        self._tx(go)

    def refund_lost(self, wallet: WalletId, now: int) -> int:
        """After the claim window, refund what the lost SE held by the ledger's books (see
        ``offcash.ledger.lost``); returns the amount (once)."""

        def go(conn: Connection) -> int:
            row = registry.get(conn, wallet, lock=True)  # waits for settlements of its spends
            if row.status == "refunded":
                raise ClaimNotReady(f"wallet {wallet} was already refunded")
            if row.status != "revoked" or row.reason != "lost":
                why = "active" if row.status == "active" else f"{row.status}: {row.reason}"
                raise ClaimNotReady(
                    f"wallet {wallet} was not reported lost ({why}): only a wallet reported "
                    "lost is refunded, after the claim window"
                )
            opens = int(row.revoked_at) + self.claim_window
            if now < opens:
                when = dt.datetime.fromtimestamp(opens, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
                raise ClaimNotReady(f"wallet {wallet}'s claim window is open until {when}")
            return lost.refund(conn, row, now)

        return self._tx(go)

    def release_torn(self, now: int) -> int:
        """Pay torn payments (payer-reported only, now too old for any payee to accept
        offline) to their payee's owner account; returns how many."""
        cutoff = now - self.params.max_payment_age - self.params.clock_skew
        return self._tx(lambda conn: settle.release_torn(conn, cutoff, now))

    def evidence(self, payer: WalletId) -> list[tuple[int, list[bytes]]]:
        """For each double-spent counter of ``payer``: every distinct signed message."""

        def go(conn: Connection) -> list[tuple[int, list[bytes]]]:
            out = []
            c = s.conflicts
            counters = sorted(
                {
                    int(r[0])
                    for r in conn.execute(sa.select(c.c.counter).where(c.c.payer == payer.raw))
                }
            )
            for n in counters:
                first = conn.execute(
                    sa.select(s.spends.c.message).where(
                        s.spends.c.payer == payer.raw, s.spends.c.counter == n
                    )
                ).scalar_one()
                more = conn.execute(
                    sa.select(c.c.message)
                    .where(c.c.payer == payer.raw, c.c.counter == n)
                    .order_by(c.c.digest)
                ).scalars()
                out.append((n, [bytes(first), *(bytes(x) for x in more)]))
            return out

        return self._tx(go)

    def anomalies(self, wallet: WalletId | None = None) -> list[Anomaly]:
        """What settlement detected (all, or for one wallet), oldest first."""
        a = s.anomalies
        q = sa.select(a).order_by(a.c.id)
        if wallet is not None:
            q = q.where(a.c.wallet == wallet.raw)
        rows = self._tx(lambda conn: conn.execute(q).all())
        return [
            Anomaly(
                r.kind,
                WalletId(bytes(r.wallet)) if r.wallet else None,
                r.bank,
                int(r.amount),
                int(r.time),
                r.detail,
                bytes(r.evidence) if r.evidence is not None else None,
            )
            for r in rows
        ]

    def wallet_status(self, wallet: WalletId) -> str:
        """``active``, ``revoked`` or ``refunded``."""
        return str(self._tx(lambda conn: registry.get(conn, wallet)).status)


#: The PostgreSQL advisory lock (with the schema's hash) a migration holds exclusively and
#: every other transaction shares, so none acts on the algorithm the migration replaces.
_MIGRATION_LOCK = 0x0FFCA5


class _Stale(Exception):
    """The CAs and parameters this service cached predate an algorithm migration."""


def _lock_algorithm(conn: Connection, *, exclusive: bool) -> None:
    if conn.dialect.name == "postgresql":  # SQLite: BEGIN IMMEDIATE serializes everything
        lock = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        conn.execute(
            sa.text(f"SELECT {lock}(:k, hashtext(current_schema()))"), {"k": _MIGRATION_LOCK}
        )


def _check_algorithm(conn: Connection, cached: NetworkParams) -> None:
    """``_Stale`` if the network's algorithm is no longer ``cached``'s: another process
    migrated the network since this one loaded its CAs, which must not sign anything more
    (a P-256 certificate outliving ``legacy_until``, an old CA's CRL in the new CA's place).
    The shared lock holds a migration back until this transaction ends."""
    _lock_algorithm(conn, exclusive=False)
    if conn.execute(_ALGORITHM).scalar() != cached.algorithm.short:
        raise _Stale


# built once (SQLAlchemy then reuses their compiled form): every transaction runs the first,
# every funding the others
_ALGORITHM = sa.select(s.meta.c.value).where(s.meta.c.key == "algorithm")
_EARLIER_VOUCHER = sa.select(s.vouchers.c.amount, s.vouchers.c.issued_at).where(
    s.vouchers.c.wallet == sa.bindparam("wallet"), s.vouchers.c.id == sa.bindparam("id")
)
_NEW_VOUCHER = db.insert_ignoring(s.vouchers, s.vouchers.c.id)


def _load_params(conn: Connection) -> NetworkParams:
    rows = {k: v for k, v in conn.execute(sa.select(s.meta.c.key, s.meta.c.value)).all()}
    if not rows:
        raise NotFound("the ledger has no network yet")
    legacy = rows.get("legacy_algorithm")
    return NetworkParams(
        rows["currency"],
        SignatureAlgorithm.from_name(rows["algorithm"]),
        int(rows["max_payment_age"]),
        int(rows["clock_skew"]),
        None if legacy is None else SignatureAlgorithm.from_name(legacy),
        int(rows.get("legacy_until", "0")),
    )


def voucher_id_of(idempotency_key: str) -> bytes:
    """The voucher id an idempotency key names (16 bytes of its SHA-256)."""
    return hashlib.sha256(b"offcash fund\0" + idempotency_key.encode()).digest()[:VOUCHER_ID_BYTES]


def _positive(amount: int) -> None:
    if type(amount) is not int or amount <= 0:
        raise VerificationError(Rejection.NON_POSITIVE_AMOUNT, str(amount))
    if amount > books.MAX_TOTAL:
        raise LimitReached(f"amount {amount} beyond the ledger's bound {books.MAX_TOTAL}")


def _counterfeit(r: checks.Refused, data: bytes, terminal: Row[Any], now: int) -> dict[str, object]:
    """A ``counterfeit`` anomaly for a payment a terminal redeemed (as for a payee SE's sync:
    the payee, its bank, the amount claimed, the message as evidence)."""
    return {
        "kind": "counterfeit",
        "detail": f"{r.reason}: redeemed by terminal",
        "time": now,
        "wallet": bytes(terminal.id),
        "bank": terminal.bank,
        "amount": r.amount,
        "evidence": bytes(data),
    }


def _chunks(it: Iterator[bytes], n: int) -> Iterator[list[bytes]]:
    while chunk := list(islice(it, n)):
        yield chunk
