"""The cost of one offline payment over APDUs, against the in-process SE and the crypto floor.

Prints, per algorithm, for one payment (the payee's request, the payer's payment, the payee's
receive with its receipt), both wallets of the same kind:
- the crypto floor: the payment's cryptography called raw on ``cryptography``
  (``core_payment.crypto_floor``, warm: 2 signatures + 1 verification, the payer being known);
- the software SE in memory, and sealed in a file persisted (fsync) after every operation;
- cards: the applet in process behind ``AppletChannel`` with its memory in RAM (the APDU codec,
  chaining, GET RESPONSE and the CBOR arguments only); over a local socket (``CardFactory``:
  the vpcd protocol, memory in a file, persisted after every operation); and over PC/SC (card
  processes in two vpcd slots, pcscd, pyscard), with short APDUs and command chaining and with
  extended length. The PC/SC rows need pcscd with vpcd (skipped, and said so, otherwise);
- payments/s, the ratio to the floor (measured in the same run, batches interleaved), and the
  APDUs one payment takes.

Run: ``python benchmarks/apdu.py [--payments N] [--algorithms p256,ml-dsa-65]``. Not a test:
figures vary with the machine and its load; compare the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from core_payment import crypto_floor

from offcash.card import process
from offcash.card.kind import CardFactory
from offcash.card.pcsc import PcscChannel
from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.domain.ids import WalletId
from offcash.domain.limits import Limits
from offcash.domain.network import NetworkParams
from offcash.issuance import Bank, CentralBank
from offcash.se.card.applet import Applet
from offcash.se.card.eeprom import MemoryEeprom
from offcash.se.card.host import AppletChannel, CardSecureElement
from offcash.se.interface import SecureElement
from offcash.se.software import SoftwareSecureElement
from offcash.se.storage import SealedFile

NOW = 1_790_000_000
BIG = Limits(10**12, 10**9, 10**6, 10**12, 10**6)
PIN, PUK = "2468", "13572468"


class Counting:
    """An ``ApduChannel`` that counts the APDUs it carries."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.count = 0

    def transmit(self, apdu: bytes) -> bytes:
        self.count += 1
        return bytes(self.inner.transmit(apdu))


class Network:
    """A central bank and a bank of one algorithm."""

    def __init__(self, alg: SignatureAlgorithm) -> None:
        self.params = NetworkParams("EUR", alg)
        self.cb = CentralBank.create("Bench Central Bank", alg, NOW - 10)
        self.bank: Bank = self.cb.certify_bank("Bench Bank", NOW - 10)

    def enrol(self, se: SecureElement, balance: int) -> SecureElement:
        wallet = WalletId.random()
        se.enroll(
            self.bank.certify_wallet(se.csr(), wallet, BIG, 0, NOW),
            [self.bank.certificate_der],
            [],
            NOW,
        )
        if balance:
            se.load(self.bank.voucher(wallet, balance, "EUR", NOW), NOW)
        return se

    def card(self, channel: Any) -> CardSecureElement:
        se = CardSecureElement(channel)
        se.personalise(self.params, self.cb.certificate_der, PIN, PUK)
        se.verify(PIN)
        return se


Maker = Callable[[Network, Path], Iterator[tuple[SecureElement, SecureElement, list[Counting]]]]


@contextlib.contextmanager
def software(net: Network, folder: Path, durable: bool) -> Iterator[Any]:
    def make(name: str) -> SecureElement:
        state = SoftwareSecureElement.new_state(net.params, net.cb.certificate_der)
        store = None
        if durable:
            store = SealedFile.create(folder / f"{name}.se", PIN, state, scrypt_n=2**10)
        return SoftwareSecureElement(state, store)

    yield make("payer"), make("payee"), []


@contextlib.contextmanager
def applet_in_process(net: Network, folder: Path) -> Iterator[Any]:
    channels = [Counting(AppletChannel(Applet(MemoryEeprom()))) for _ in range(2)]
    yield net.card(channels[0]), net.card(channels[1]), channels


@contextlib.contextmanager
def over_socket(net: Network, folder: Path) -> Iterator[Any]:
    factory = CardFactory()
    try:
        ses = [
            factory.create(folder / name, net.params, net.cb.certificate_der)
            for name in ("payer", "payee")
        ]
        yield ses[0], ses[1], []  # the same APDUs as in process
    finally:
        factory.close()


@contextlib.contextmanager
def over_pcsc(net: Network, folder: Path, extended: bool) -> Iterator[Any]:
    started, opened = [], []
    try:
        for name in ("payer", "payee"):
            started.append(process.start(folder, name, folder / f"{name}.card"))
        ses, channels = [], []
        for card in started:
            pcsc = PcscChannel(card.reader)
            opened.append(pcsc)
            counting = Counting(pcsc)
            channels.append(counting)
            se = CardSecureElement(counting, extended=extended)
            se.personalise(net.params, net.cb.certificate_der, PIN, PUK)
            se.verify(PIN)
            ses.append(se)
        yield ses[0], ses[1], channels
    finally:
        for channel in opened:
            channel.close()
        for card in started:
            process.stop(folder, card.wallet)


def measure(net: Network, setup: Any, payments: int) -> tuple[float, float, float]:
    """Payments/s, ratio to the floor and APDUs per payment (None where not counted) for the
    wallets ``setup`` makes."""
    floor_round = crypto_floor(net.params.algorithm, cold=False)
    with setup as (payer, payee, channels):
        net.enrol(payer, 10**9)
        net.enrol(payee, 0)
        before = sum(c.count for c in channels)
        elapsed = floor_elapsed = 0.0
        now = NOW
        for _ in range(payments):
            start = time.perf_counter()
            floor_round()
            floor_elapsed += time.perf_counter() - start
            now += 1
            start = time.perf_counter()
            payment = payer.pay(payee.request(1234, now, "INV-0001"), now)
            payee.receive(payment, now)
            elapsed += time.perf_counter() - start
        apdus = (sum(c.count for c in channels) - before) / payments if channels else None
    return payments / elapsed, elapsed / floor_elapsed, apdus


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payments", type=int, default=30)
    parser.add_argument("--algorithms", default="p256,ml-dsa-65")
    args = parser.parse_args()
    try:
        pcsc_ok = len(process.vpcd_slots()) >= 2
        why = "" if pcsc_ok else "fewer than two vpcd slots"
    except Exception as exc:
        pcsc_ok, why = False, str(exc)
    print(f"One offline payment (request, pay, receive), {args.payments} payments per row")
    print(
        f"{'algorithm':<10} {'secure elements':<44} {'payments/s':>10} {'x floor':>8} {'APDUs':>6}"
    )
    for name in args.algorithms.split(","):
        net = Network(SignatureAlgorithm.from_name(name))
        rows: list[tuple[str, Callable[[Path], Any]]] = [
            ("software SE, in memory", lambda f, net=net: software(net, f, False)),
            ("software SE, sealed file, fsync", lambda f, net=net: software(net, f, True)),
            ("card applet in process, memory in RAM", lambda f, net=net: applet_in_process(net, f)),
            ("card over a socket (vpcd protocol), file", lambda f, net=net: over_socket(net, f)),
        ]
        if pcsc_ok:
            rows += [
                (
                    "card over PC/SC, short APDUs + chaining",
                    lambda f, net=net: over_pcsc(net, f, False),
                ),
                ("card over PC/SC, extended length", lambda f, net=net: over_pcsc(net, f, True)),
            ]
        for label, setup in rows:
            with tempfile.TemporaryDirectory() as folder:
                rate, ratio, apdus = measure(net, setup(Path(folder)), args.payments)
            count = "-" if apdus is None else f"{apdus:.1f}"
            print(f"{name:<10} {label:<44} {rate:>10.1f} {ratio:>8.1f} {count:>6}")
        if not pcsc_ok:
            print(f"{name:<10} card over PC/SC: not measured ({why})")


if __name__ == "__main__":
    main()
