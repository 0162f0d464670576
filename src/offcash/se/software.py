"""A secure element in software, for development and pilots.

Theory of operation: ``SoftwareSecureElement`` implements ``SecureElement`` over an in-memory
state that it persists through a ``StateStore`` (``SealedFile``: PIN-sealed, atomic) after
every operation, or not at all when no store is given (benchmarks, simulations). On a
``SealedFile`` an operation usually appends only what it changed (``offcash.se.journal``), so
persisting costs the same however long the log is. Each operation
first checks its arguments (``offcash.se.arguments``: a bad one is a ``TypeError`` or
``ValueError``) and everything else that can fail, then signs (what it signs is decoded first
with the payee's strict decoder, ``messages.readable_payload``), then mutates the state (which
cannot fail), then persists; if persisting fails, the state is reloaded from the last persisted
bytes. So a debit is never persisted without its signed payment in the log, nor a credit
without its entry, and a refused call leaves the state byte for byte as it was.

Two rules keep an honest payer from paying twice or paying while revoked: a request already
paid is answered with the same payment bytes (``offcash.se.paid``), and once the SE holds a CRL
of its bank that lists its own certificate (installed at enrolment, at a sync, or by
``install_crls`` when the bank answers a sync with no acknowledgement) it signs no payment and
no unload (``SecureElementRevoked``).

It is *not* tamper-resistant: whoever holds the file and the PIN holds the key and can copy or
roll back the state. offcash bounds and detects that (limits, short-lived certificates, double
spend detection at settlement); a hardware SE or TEE implementing ``SecureElement`` prevents it.
"""

from __future__ import annotations

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from offcash.crypto import challenge, pki
from offcash.crypto.algorithms import PrivateKey, algorithm_of, spki
from offcash.crypto.trust import TrustStore, WalletCertificate, roll_over
from offcash.domain.ids import WalletId, new_nonce
from offcash.domain.network import NetworkParams
from offcash.encoding.sealed import KemKey, KemSuite
from offcash.errors import (
    CannotDecrypt,
    DecodeError,
    InsufficientFunds,
    Limit,
    LimitExceeded,
    Rejection,
    SecureElementError,
    SecureElementRevoked,
    VerificationError,
)
from offcash.protocol import messages as m
from offcash.se import arguments as arg
from offcash.se import journal, log
from offcash.se.interface import Received, SecureElement, Status, SyncUpload
from offcash.se.paid import MAX_PAID_REQUESTS
from offcash.se.state import MAX_LOG_ENTRIES, STATE_ITEMS, STATE_VERSION, SEState
from offcash.se.storage import SealedFile, StateStore
from offcash.verification import verify_ack, verify_voucher

#: The first two bytes of a state in the current layout: a CBOR array of ``STATE_ITEMS``
#: items, then the version (both below 24, so one byte each).
_CURRENT_HEAD = bytes([0x80 + STATE_ITEMS, STATE_VERSION])


class SoftwareSecureElement(SecureElement):
    """A software ``SecureElement`` (see the module docstring for what it does not protect)."""

    def __init__(self, state: bytes, store: StateStore | None = None) -> None:
        self._store = store
        self._persisted = state  # the last base persisted, and the deltas appended after it
        self._deltas: list[bytes] = []
        self._load(state)
        # deltas may go to a journal only on top of the very state the store holds, in the
        # current layout (its array's head: item count and version); else the first persist
        # is whole
        self._journal_ok = (
            isinstance(store, SealedFile) and state[:2] == _CURRENT_HEAD and store.holds(state)
        )

    @staticmethod
    def new_state(params: NetworkParams, root_certificate: bytes) -> bytes:
        """The initial state of a new SE: a fresh key for the network's algorithm, the root."""
        key = params.algorithm.generate()
        key_der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        TrustStore.create(root_certificate)  # refuse a bad root now, not at first use
        return SEState(
            key_der=key_der,
            params=params,
            root=root_certificate,
            encryption_key=KemKey.generate(_kem_suite(params)),
        ).encode()

    def _load(self, data: bytes) -> None:
        s = SEState.decode(data)
        try:
            key = serialization.load_der_private_key(s.key_der, None)
            if algorithm_of(key) not in (s.params.algorithm, s.params.legacy):  # type: ignore[arg-type]
                raise ValueError("the key is not of the network's algorithm")
            next_key = (
                None
                if s.next_key_der is None
                else serialization.load_der_private_key(s.next_key_der, None)
            )
            if next_key is not None and algorithm_of(next_key) is not s.params.algorithm:  # type: ignore[arg-type]
                raise ValueError("the next key is not of the network's algorithm")
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise SecureElementError(f"secure element key is unreadable: {exc}") from None
        self._s = s
        self._key: PrivateKey = key  # type: ignore[assignment]
        self._next_key: PrivateKey | None = next_key  # type: ignore[assignment]
        self._trust = TrustStore.create(s.root, s.banks, s.crls)
        self._trust_banks = list(s.banks)  # the bank certificates ``_trust`` was built from
        self._cert = (
            None if s.certificate is None else self._trust.wallet_certificate(s.certificate, None)
        )
        self._head = log.chain_all(s.log_base, s.entries)
        self._sent_value = _sent_value(s.entries)
        kem = s.encryption_key
        self._kem_public = None if kem is None else kem.public()  # derived once, not per request
        self._tracker = journal.Tracker(s)

    def _commit(self) -> None:
        """Persist the state: a delta appended to the store's journal when it takes one and
        the change is only additions and small items (``offcash.se.journal``), else the
        whole state. On failure the state is reloaded as last persisted."""
        store = self._store
        if store is None:
            return
        try:
            delta = None
            if self._journal_ok and isinstance(store, SealedFile) and store.appendable:
                delta = self._tracker.delta(self._s)
            if delta is not None:
                assert isinstance(store, SealedFile)
                store.append(delta)
                self._deltas.append(delta)
                self._tracker.accepted()
            else:
                data = self._s.encode()
                store.save(data)
                self._persisted, self._deltas = data, []
                self._tracker = journal.Tracker(self._s)
                self._journal_ok = isinstance(store, SealedFile)
        except BaseException:
            persisted = journal.replay(self._persisted, self._deltas) if self._deltas else None
            self._load(persisted or self._persisted)
            raise

    def _append(self, entry: log.Entry) -> None:
        self._s.entries.append(entry)
        self._head = log.chain(self._head, entry)
        if entry.type is log.EntryType.SENT:
            self._sent_value += entry.amount

    def _enrolled(self) -> WalletCertificate:
        if self._cert is None:
            raise SecureElementError("the secure element is not enrolled with a bank yet")
        return self._cert

    def _check_log_room(self) -> None:
        if len(self._s.entries) + 1 > MAX_LOG_ENTRIES:
            raise LimitExceeded(Limit.MAX_LOG_ENTRIES, len(self._s.entries) + 1, MAX_LOG_ENTRIES)

    def _check_not_revoked(self, cert: WalletCertificate) -> None:
        if self._trust.revokes(cert.der):
            raise SecureElementRevoked(
                f"wallet {cert.wallet_id} is revoked: a CRL of {cert.bank} this secure element "
                "holds lists its certificate, so it pays and unloads nothing more"
            )

    # --- enrolment and status ------------------------------------------------------------

    @property
    def params(self) -> NetworkParams:
        """The network parameters this SE was made for."""
        return self._s.params

    @property
    def trust(self) -> TrustStore:
        """The trust store (root, bank CAs, CRLs) this SE verifies with."""
        return self._trust

    def authenticate(self, nonce: bytes) -> bytes:
        """The answer to a host's challenge ``nonce`` (``offcash.crypto.challenge``: 32 bytes,
        signed in its own context with the key the wallet certificate certifies), so the host
        knows this is its wallet's card before it presents the PIN (a card's INTERNAL
        AUTHENTICATE; not part of ``SecureElement``). ``SecureElementError`` before enrolment:
        no certified key yet."""
        self._enrolled()
        return challenge.sign_challenge(self._key, nonce)

    def csr(self) -> bytes:
        # after a migration, the KEM key of the network's new suite, for the certificate to bind
        held = self._s.next_encryption_key or self._s.encryption_key
        kem = None if held is None else held.public()
        if self._next_key is not None:  # after a migration: the new key, handed over by the old
            return pki.make_csr(self._next_key, previous=self._key, encryption_key=kem)
        return pki.make_csr(self._key, encryption_key=kem)

    def migrate(
        self,
        params: NetworkParams,
        root_certificate: bytes,
        new_with_old: bytes,
        bank_certificates: list[bytes],
    ) -> None:
        """Follow the network to a new algorithm: trust the new root (its NewWithOld
        certificate must verify under the root held; a downgrade is ``ALGORITHM_NOT_ALLOWED``),
        keep this SE's certificate valid through the OldWithNew certificate among
        ``bank_certificates``, and make a key of the new algorithm, which the next sync
        certifies (``csr`` hands the wallet over to it), and a KEM key of the new network's
        suite if the SE's is of another (``csr`` asks the bank to bind it; ``_install`` moves
        to it). Migrating again to the same parameters changes nothing."""
        arg.data(root_certificate, "root_certificate")
        arg.data(new_with_old, "new_with_old")
        arg.data_list(bank_certificates, "bank_certificates")
        current = self._s.params
        if params == current and root_certificate == self._s.root:
            return
        expected = current.migrate(params.algorithm, params.legacy_until)
        if params != expected:
            raise VerificationError(
                Rejection.ALGORITHM_NOT_ALLOWED, "the parameters are not this network's migrated"
            )
        root = roll_over(self._trust.root, root_certificate, new_with_old)
        trust = TrustStore.create(root, bank_certificates, [])
        for crl in self._trust.crl_ders():
            if trust.knows_issuer_of(crl):
                trust.add_crl(crl)
        if self._cert is not None:
            trust.wallet_certificate(self._cert.der, None)  # still valid under the old root
        next_key = params.algorithm.generate()
        self._s.params, self._s.root = params, root
        self._s.banks, self._s.crls = trust.bank_certificates(), trust.crl_ders()
        self._s.next_key_der = next_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        kem = self._s.encryption_key
        if kem is not None and kem.suite is not _kem_suite(params):
            self._s.next_encryption_key = KemKey.generate(_kem_suite(params))
        self._trust, self._trust_banks, self._next_key = trust, list(bank_certificates), next_key
        self._commit()

    def _install(
        self, certificate: bytes, banks: list[bytes], crls: list[bytes], now: int
    ) -> WalletCertificate:
        arg.data(certificate, "certificate")
        arg.data_list(banks, "bank_certificates")
        arg.data_list(crls, "crls")
        arg.time(now)
        if banks == self._trust_banks:
            # the bank CAs it holds (the same root: only ``migrate`` changes it, and the banks
            # with it): the store built from them and the CRLs held, re-validated from their DER,
            # would be the one held, so only the new CRLs are checked, in a copy
            trust = self._trust.copy()
            held = set(self._trust.crl_ders())
            new = [crl for crl in crls if crl not in held]
        else:
            trust = TrustStore.create(self._s.root, banks, [])
            new = [*self._trust.crl_ders(), *crls]
        for crl in new:
            if trust.knows_issuer_of(crl):
                trust.add_crl(crl)
        cert = trust.wallet_certificate(certificate, now)
        rekeyed = self._next_key is not None and spki(self._next_key.public_key()) == spki(
            cert.public_key
        )
        if not rekeyed and spki(self._key.public_key()) != spki(cert.public_key):
            raise VerificationError(
                Rejection.BAD_CERTIFICATE, "certificate is not for this SE's key"
            )
        if self._cert is not None and cert.wallet_id != self._cert.wallet_id:
            raise VerificationError(Rejection.WRONG_WALLET, "certificate names another wallet")
        if cert.counter_base > self._s.counter:
            raise VerificationError(
                Rejection.BAD_CERTIFICATE, "certificate counter is ahead of the SE"
            )
        self._trust, self._trust_banks = trust, list(banks)
        self._s.banks = trust.bank_certificates()
        self._s.crls = trust.crl_ders()
        if rekeyed and self._next_key is not None and self._s.next_key_der is not None:
            # the new key is certified: the old one is destroyed, it signs nothing more
            self._key, self._s.key_der = self._next_key, self._s.next_key_der
            self._next_key, self._s.next_key_der = None, None
        self._rotate_kem(cert, now)
        return cert

    def _rotate_kem(self, cert: WalletCertificate, now: int) -> None:
        """With ``cert`` installed at ``now``: forget a retired KEM key whose time is up, and
        move to the next KEM key once ``cert`` binds it. The key it replaces is kept, to open
        the payments in flight sealed for it, until the first certificate installed more than
        ``max_payment_age + clock_skew`` after the end of the certificate that bound it (or
        after ``now``, if later): a payment a payer sealed for it under that certificate, or
        answering a request that carried it, is refused as too old or unknown by then (rule 9
        accepts a payment exactly ``max_payment_age`` old, so the key is kept that second)."""
        s = self._s
        if s.retired_encryption_key is not None and now > s.retired_until:
            s.retired_encryption_key, s.retired_until = None, 0
        nxt = s.next_encryption_key
        if nxt is None or not cert.certifies_encryption_key(nxt.public()):
            return
        old = self._cert.not_after if self._cert is not None else now
        if s.encryption_key is not None:
            s.retired_encryption_key = s.encryption_key
            s.retired_until = max(old, now) + s.params.max_payment_age + s.params.clock_skew
        s.encryption_key, s.next_encryption_key = nxt, None
        self._kem_public = nxt.public()

    def enroll(
        self, certificate: bytes, bank_certificates: list[bytes], crls: list[bytes], now: int
    ) -> None:
        if self._cert is not None:
            raise SecureElementError("the secure element is already enrolled")
        cert = self._install(certificate, bank_certificates, crls, now)
        self._cert, self._s.certificate, self._s.last_sync = cert, certificate, now
        self._commit()

    def install_crls(self, crls: list[bytes], now: int) -> bool:
        arg.data_list(crls, "crls")
        arg.time(now)
        cert = self._enrolled()
        trust = self._trust.copy()
        added = sum(1 for crl in crls if trust.knows_issuer_of(crl) and trust.add_crl(crl))
        if added:
            self._trust = trust
            self._s.crls = trust.crl_ders()
            self._commit()
        return trust.revokes(cert.der)

    def status(self, now: int) -> Status:
        arg.time(now)
        cert = self._cert
        return Status(
            wallet_id=cert.wallet_id if cert else None,
            bank=cert.bank if cert else None,
            currency=self._s.params.currency,
            balance=self._s.balance,
            counter=self._s.counter,
            limits=cert.limits if cert else None,
            certificate_expires=cert.not_after if cert else None,
            last_sync=self._s.last_sync if cert else None,
            offline_payments=self._s.counter - cert.counter_base if cert else 0,
            offline_value=self._sent_value,
            log_entries=len(self._s.entries),
        )

    # --- paying --------------------------------------------------------------------------

    def _debit_checks(self, amount: int, now: int, *, payment: bool) -> WalletCertificate:
        arg.amount(amount)
        arg.time(now)
        cert = self._enrolled()
        self._check_not_revoked(cert)
        limits = cert.limits
        if now > cert.not_after:
            raise SecureElementError("the wallet certificate has expired: sync to renew it")
        # one rule with every verifier's (docs/PROTOCOL.md rule 13): the offline period is the
        # certified one, from the certificate's notBefore, so the SE signs nothing a payee refuses
        limits.check(Limit.MAX_OFFLINE_SECONDS, now - cert.not_before)
        if payment:
            limits.check(Limit.MAX_PAYMENT, amount)
            limits.check(Limit.MAX_OFFLINE_VALUE, self._sent_value + amount)
        limits.check(Limit.MAX_OFFLINE_PAYMENTS, self._s.counter + 1 - cert.counter_base)
        if amount > self._s.balance:
            raise InsufficientFunds(self._s.balance, amount)
        self._check_log_room()
        return cert

    def _sign_payment(
        self,
        payee: WalletId,
        amount: int,
        now: int,
        reference: str | None,
        request: tuple[bytes, int] | None = None,
    ) -> bytes:
        """Debit, sign and log a payment; ``request`` is the nonce it answers and how long to
        remember that request as paid."""
        arg.wallet_id(payee)
        arg.text(reference, "reference", arg.MAX_REFERENCE)
        cert = self._debit_checks(amount, now, payment=True)
        if payee == cert.wallet_id:
            raise VerificationError(Rejection.SELF_PAYMENT)
        nonce = None if request is None else request[0]
        if request is not None and self._s.paid.full(now):
            raise LimitExceeded(Limit.MAX_PAID_REQUESTS, MAX_PAID_REQUESTS + 1, MAX_PAID_REQUESTS)
        counter = self._s.counter + 1
        payment = m.sign_payment(
            self._key,
            cert.der,
            payee=payee,
            amount=amount,
            currency=self._s.params.currency,
            counter=counter,
            time=now,
            nonce=nonce,
            reference=reference,
        )
        self._s.counter = counter
        self._s.balance -= amount
        self._append(log.Entry(log.EntryType.SENT, now, amount, payment))
        if request is not None:
            self._s.paid.remember(payee.raw, request[0], request[1], payment, now)
        self._commit()
        return payment

    def pay(self, request: bytes, now: int) -> bytes:
        req = m.parse_request(arg.data(request, "request"))
        arg.time(now)
        params = self._s.params
        if req.currency != params.currency:
            raise VerificationError(
                Rejection.CURRENCY_MISMATCH, f"{req.currency} on a {params.currency} network"
            )
        paid = self._s.paid.payment_for(req.payee.raw, req.nonce, now)
        if paid is not None:
            p = m.parse_payment(paid)
            if (p.payee, p.amount, p.currency, p.reference) != (
                req.payee,
                req.amount,
                req.currency,
                req.reference,
            ):
                raise VerificationError(
                    Rejection.NONCE_USED,
                    "this secure element already paid another request of this payee with this "
                    "nonce; the payee refuses a second payment for it",
                )
            return paid  # the same request again: the same payment (a torn-transfer re-send)
        if req.time > now + params.clock_skew:
            raise VerificationError(
                Rejection.FROM_THE_FUTURE, f"request time {req.time} > {now} + {params.clock_skew}"
            )
        horizon = params.max_payment_age + params.clock_skew
        if req.time < now - horizon:
            raise VerificationError(
                Rejection.TOO_OLD,
                f"request time {req.time} < {now} - {horizon}: the payee "
                "no longer accepts a payment for it",
            )
        # kept while a repeat could still be paid: until the request is too old (above)
        until = max(now, req.time) + horizon
        return self._sign_payment(req.payee, req.amount, now, req.reference, (req.nonce, until))

    def pay_to(self, payee: WalletId, amount: int, now: int, reference: str | None = None) -> bytes:
        return self._sign_payment(payee, amount, now, reference)

    def sent_payment(self, counter: int) -> bytes:
        arg.counter(counter)
        for entry in self._s.entries:
            if (
                entry.type is log.EntryType.SENT
                and m.parse_payment(entry.message).counter == counter
            ):
                return entry.message
        raise SecureElementError(f"no payment with counter {counter} since the last sync")

    # --- receiving -----------------------------------------------------------------------

    def request(
        self,
        amount: int,
        now: int,
        reference: str | None = None,
        payee_name: str | None = None,
        nonce: bytes | None = None,
    ) -> bytes:
        arg.amount(amount)
        arg.time(now)
        arg.text(reference, "reference", arg.MAX_REFERENCE)
        arg.text(payee_name, "payee_name", arg.MAX_PAYEE_NAME)
        arg.nonce(nonce)
        cert = self._enrolled()
        cert.limits.check(Limit.MAX_BALANCE, self._s.balance + amount)
        req = m.PaymentRequest(
            payee=cert.wallet_id,
            amount=amount,
            currency=self._s.params.currency,
            nonce=nonce if nonce is not None else new_nonce(),
            time=now,
            reference=reference,
            payee_name=payee_name,
            encryption_key=self._kem_public,
        )
        encoded = req.encode()
        try:  # a payer reads the request with this decoder: refuse one it would not read
            readable = m.parse_request(encoded) == req
        except DecodeError as exc:
            raise ValueError(f"refusing an unreadable request: {exc}") from None
        if not readable:
            raise ValueError("refusing a request that does not read back as given")
        self._s.book.maybe_prune(now, self._s.params.max_payment_age)
        self._s.book.add_request(req, encoded)
        self._commit()
        return encoded

    def open_sealed(self, data: bytes) -> bytes:
        arg.data(data, "sealed message")
        if self._s.encryption_key is None:
            raise CannotDecrypt("this wallet has no encryption key (made before version 3)")
        try:
            return self._s.encryption_key.open(data)
        except CannotDecrypt:
            retired = self._s.retired_encryption_key  # sealed before an algorithm migration
            if retired is None:
                raise
            return retired.open(data)

    def receive(self, payment: bytes, now: int) -> Received:
        arg.data(payment, "payment")
        arg.time(now)
        cert = self._enrolled()
        verified, duplicate = self._s.book.verify(
            payment, trust=self._trust, params=self._s.params, payee=cert.wallet_id, now=now
        )
        p = verified.payment
        receipt = m.sign_receipt(self._key, cert.der, payment=p.digest, time=now)
        result = Received(verified.payer, p.amount, p.counter, p.digest, receipt, duplicate)
        if duplicate:
            return result
        cert.limits.check(Limit.MAX_BALANCE, self._s.balance + p.amount)
        self._check_log_room()
        self._s.balance += p.amount
        self._s.book.record(verified, now)
        self._append(log.Entry(log.EntryType.RECEIVED, now, p.amount, payment))
        self._commit()
        return result

    # --- funding and unloading -----------------------------------------------------------

    def load(self, voucher: bytes, now: int) -> int:
        arg.data(voucher, "voucher")
        arg.time(now)
        cert = self._enrolled()
        v = verify_voucher(
            voucher,
            trust=self._trust,
            params=self._s.params,
            wallet=cert.wallet_id,
            bank=cert.bank,
            now=now,
        )
        if v.voucher_id in self._s.vouchers:
            raise VerificationError(Rejection.REPLAYED, "voucher already applied")
        cert.limits.check(Limit.MAX_BALANCE, self._s.balance + v.amount)
        self._check_log_room()
        self._s.vouchers = {i: e for i, e in self._s.vouchers.items() if e >= now}
        self._s.vouchers[v.voucher_id] = v.expires
        self._s.balance += v.amount
        self._append(log.Entry(log.EntryType.LOADED, now, v.amount, voucher))
        self._commit()
        return v.amount

    def unload(self, amount: int, now: int) -> bytes:
        cert = self._debit_checks(amount, now, payment=False)
        counter = self._s.counter + 1
        request = m.sign_unload(
            self._key,
            cert.der,
            amount=amount,
            currency=self._s.params.currency,
            counter=counter,
            time=now,
        )
        self._s.counter = counter
        self._s.balance -= amount
        self._append(log.Entry(log.EntryType.UNLOADED, now, amount, request))
        self._commit()
        return request

    # --- sync ----------------------------------------------------------------------------

    def sync_upload(self, now: int) -> SyncUpload:
        arg.time(now)
        cert = self._enrolled()
        report = m.sign_report(
            self._key,
            cert.der,
            sync_seq=self._s.sync_seq,
            counter=self._s.counter,
            balance=self._s.balance,
            currency=self._s.params.currency,
            entries=len(self._s.entries),
            log_digest=self._head,
            time=now,
            crls=self._trust.crl_numbers(),  # what it holds: the ledger's proof (issue 9)
        )
        return SyncUpload(report=report, entries=list(self._s.entries))

    def apply_sync(
        self,
        ack: bytes,
        certificate: bytes,
        bank_certificates: list[bytes],
        crls: list[bytes],
        now: int,
    ) -> None:
        arg.data(ack, "ack")
        arg.time(now)
        cert = self._enrolled()
        a = verify_ack(
            ack,
            trust=self._trust,
            params=self._s.params,
            wallet=cert.wallet_id,
            bank=cert.bank,
            now=now,
        )
        if a.sync_seq != self._s.sync_seq:
            raise VerificationError(
                Rejection.REPLAYED,
                f"acknowledgement for sync {a.sync_seq}, expected {self._s.sync_seq}",
            )
        if (
            a.entries > len(self._s.entries)
            or log.chain_all(self._s.log_base, self._s.entries[: a.entries]) != a.log_digest
        ):
            raise VerificationError(
                Rejection.BAD_SIGNATURE, "acknowledgement does not match the log"
            )
        new_cert = self._install(certificate, bank_certificates, crls, now)
        self._cert, self._s.certificate = new_cert, certificate
        self._s.entries = self._s.entries[a.entries :]
        self._sent_value = _sent_value(self._s.entries)
        self._s.log_base = a.log_digest
        self._s.sync_seq += 1
        self._s.last_sync = a.time
        self._s.book.prune(now, self._s.params.max_payment_age)
        self._commit()


def _kem_suite(params: NetworkParams) -> KemSuite:
    """The KEM suite of a network's sealed payments: hybrid on ML-DSA networks."""
    return KemSuite.MLKEM768_X25519 if params.algorithm.post_quantum else KemSuite.X25519


def _sent_value(entries: list[log.Entry]) -> int:
    """The value paid in ``entries`` (the log since the sync): what MAX_OFFLINE_VALUE bounds."""
    return sum(e.amount for e in entries if e.type is log.EntryType.SENT)
