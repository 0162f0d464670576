"""Write the example APDU trace of docs/APDU.md from a real run of the card.

Runs a card's whole life against a pilot network (P-256): SELECT, PERSONALISE, INTERNAL
AUTHENTICATE refused before enrolment, a wrong and a right VERIFY, CSR, ENROL, a new session
(SELECT, INTERNAL AUTHENTICATE, VERIFY), LOAD, GET STATUS, a refusal and its GET ERROR, PAY
(answering a software wallet's request: a chained command), RECEIVE, SYNC UPLOAD, SYNC APPLY,
UNLOAD. Every command and response APDU crosses a ``TracingChannel`` on its way to the applet
(the same bytes as over PC/SC), and the trace replaces the part of docs/APDU.md between the
``<!-- trace -->`` markers. Long APDUs are shown by their first and last bytes and length.

Run: ``python scripts/apdu_trace.py [--doc docs/APDU.md]`` (``--print`` to print only).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.domain.ids import WalletId
from offcash.domain.limits import DEFAULT_LIMITS
from offcash.domain.network import NetworkParams
from offcash.errors import OffcashError
from offcash.issuance import CentralBank
from offcash.protocol.messages import parse_report
from offcash.se.card.applet import Applet
from offcash.se.card.eeprom import MemoryEeprom
from offcash.se.card.host import AppletChannel, CardSecureElement
from offcash.se.software import SoftwareSecureElement

T0 = 1_790_000_000
BEGIN, END = "<!-- trace:begin -->", "<!-- trace:end -->"


class TracingChannel:
    """An ``ApduChannel`` that records every exchange under the current step's title."""

    def __init__(self, inner: AppletChannel) -> None:
        self.inner = inner
        self.lines: list[str] = []

    def step(self, title: str) -> None:
        self.lines += ["", f"**{title}**", ""]

    def transmit(self, apdu: bytes) -> bytes:
        answer = self.inner.transmit(apdu)
        self.lines.append(f"    > {_show(apdu)}")
        self.lines.append(f"    < {_show(answer)}")
        return answer


def _show(data: bytes, head: int = 24, tail: int = 8) -> str:
    if len(data) <= head + tail + 4:
        return data.hex(" ").upper()
    return f"{data[:head].hex(' ').upper()} .. {data[-tail:].hex(' ').upper()}  ({len(data)} bytes)"


def trace() -> list[str]:
    """The trace of one card's life, as markdown lines."""
    cb = CentralBank.create("Test Central Bank", SignatureAlgorithm.P256, T0 - 86400)
    bank = cb.certify_bank("Bank A", T0 - 86400)
    params = NetworkParams("EUR", SignatureAlgorithm.P256)
    tracer = TracingChannel(AppletChannel(Applet(MemoryEeprom())))
    tracer.step("SELECT (a blank card: life cycle 00)")
    card = CardSecureElement(tracer)
    tracer.step("PERSONALISE (network parameters, root certificate, PIN 1234, PUK), then SELECT")
    card.personalise(params, cb.certificate_der, "1234", "12345678")
    tracer.step("INTERNAL AUTHENTICATE before ENROL: 69 85, no certified key yet")
    with contextlib.suppress(OffcashError):
        card.authenticate([cb.certificate_der])
    tracer.step("VERIFY with a wrong PIN: 63 C2, two tries left")
    with contextlib.suppress(OffcashError):
        card.verify("9999")
    tracer.step("VERIFY with the right PIN")
    card.verify("1234")
    tracer.step("CSR")
    csr = card.csr()
    wallet = WalletId(bytes(range(1, 13)))
    cert = bank.certify_wallet(csr, wallet, DEFAULT_LIMITS, 0, T0)
    tracer.step("ENROL (certificate, bank certificates, CRLs, time)")
    card.enroll(cert, [bank.certificate_der], [], T0)
    tracer.step(
        "A new session: SELECT, INTERNAL AUTHENTICATE (a random challenge; the answer verifies "
        "under the certificate's key), only then VERIFY"
    )
    card.select()
    card.authenticate([cert])
    card.verify("1234")
    tracer.step("LOAD a 50.00 EUR voucher: answers 5000")
    card.load(bank.voucher(wallet, 5_000, "EUR", T0), T0)
    tracer.step("GET STATUS")
    card.status(T0)
    payee = SoftwareSecureElement(SoftwareSecureElement.new_state(params, cb.certificate_der))
    payee_id = WalletId(bytes(range(13, 25)))
    payee.enroll(
        bank.certify_wallet(payee.csr(), payee_id, DEFAULT_LIMITS, 0, T0),
        [bank.certificate_der],
        [],
        T0,
    )
    tracer.step("PAY TO refused (60.00 EUR is over the balance): 69 A0, then GET ERROR")
    with contextlib.suppress(OffcashError):
        card.pay_to(payee_id, 6_000, T0)
    tracer.step("PAY a 12.50 EUR request of another wallet (the payment: GET RESPONSE)")
    payment = card.pay(payee.request(1_250, T0, "coffee"), T0)
    payee.receive(payment, T0)
    tracer.step(
        "RECEIVE 3.00 EUR from that wallet (chained in, GET RESPONSE out): payer, amount, "
        "counter, digest, receipt, duplicate"
    )
    card.receive(payee.pay_to(wallet, 300, T0), T0)
    tracer.step("SYNC UPLOAD: the signed report and the log (long: GET RESPONSE)")
    upload = card.sync_upload(T0 + 60)
    report = parse_report(upload.report)
    tracer.step(
        "CSR for the renewed certificate, then SYNC APPLY (acknowledgement, certificate, bank "
        "certificates, CRLs, time; chained: CLA 90 then 80)"
    )
    card.apply_sync(
        bank.acknowledge(report, wallet, T0 + 60),
        bank.certify_wallet(card.csr(), wallet, DEFAULT_LIMITS, report.counter, T0 + 60),
        [bank.certificate_der],
        [],
        T0 + 60,
    )
    tracer.step("UNLOAD 10.00 EUR: the signed unload request")
    card.unload(1_000, T0 + 120)
    return tracer.lines


def main() -> None:
    """Print the trace, or write it into the document."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--doc", type=Path, default=Path("docs/APDU.md"))
    parser.add_argument("--print", action="store_true", help="print the trace only")
    args = parser.parse_args()
    lines = trace()
    if args.print:
        print("\n".join(lines))
        return
    text = args.doc.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        sys.exit(f"{args.doc} has no {BEGIN} ... {END} markers")
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    args.doc.write_text(before + BEGIN + "\n" + "\n".join(lines) + "\n\n" + END + after)
    print(f"{args.doc}: trace of {sum(1 for x in lines if x.startswith('    >'))} APDUs written")


if __name__ == "__main__":
    main()
