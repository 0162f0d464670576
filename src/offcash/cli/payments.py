"""Offline payment commands: ``wallet request``, ``wallet pay`` and ``wallet receive``.

Theory of operation: these commands touch only the wallets' sealed secure-element files and
the registry in the network folder, never the ledger database or a server, so they work with
the ledger removed and no network. Messages travel through ``offcash.transports.files``: a
``.png`` destination becomes a QR code image, ``-`` a terminal QR (plus its text form), ``.txt``
base45 text, anything else raw CBOR; reading detects the form from the content. Each command
is a plain function returning a result ``dict`` (used by ``offcash demo`` too) wrapped by a
thin typer command that prints it. Before answering a request, the payer sees what it pays
(amount, payee name and wallet id, reference) and confirms on a terminal (``--yes`` skips the
question; without a terminal nothing is asked, so scripts never block).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from offcash.cli import output
from offcash.cli.common import Json, PinFile, open_network
from offcash.cli.config import CliRefusal, Network, WalletSE, now, read_pin
from offcash.crypto.trust import TrustStore
from offcash.domain.ids import WalletId
from offcash.domain.network import NetworkParams
from offcash.encoding import sealed
from offcash.errors import CannotDecrypt, DecodeError, Rejection, VerificationError
from offcash.protocol import messages as m
from offcash.transports import files
from offcash.transports.text import encode_text

app = typer.Typer(no_args_is_help=True)


def _deliver(data: bytes, out: str, as_json: bool) -> dict[str, Any]:
    """Write ``data`` to ``out``; with ``-`` and ``--json`` the text form goes in the result."""
    if out == "-" and as_json:
        return {"out": "-", "text": encode_text(data)}
    files.write_message(data, out)
    return {"out": out, "form": files.destination_form(out), "bytes": len(data)}


def _check_destination(out: str) -> None:
    """Refuse, before anything is signed, an ``out`` that cannot be written: a missing or
    read-only folder, or a folder in its place (``-``, the terminal, always can be)."""
    if out == "-":
        return
    path = Path(out)
    folder = path.parent
    if path.is_dir():
        raise CliRefusal(f"cannot write {out}: it is a folder: nothing was signed")
    if not folder.is_dir():
        raise CliRefusal(f"cannot write {out}: there is no folder {folder}: nothing was signed")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CliRefusal(f"cannot write {out}: folder {folder} is not writable: nothing was signed")


def request(
    net: Network,
    payee: str,
    amount: str,
    out: str,
    *,
    pin: str,
    reference: str | None = None,
    as_json: bool = False,
) -> dict[str, Any]:
    """Make ``payee``'s payment request for ``amount`` and write it to ``out``."""
    money = net.money(amount)
    with net.se(payee, pin) as se:
        data = se.request(money.minor, now(), reference=reference, payee_name=payee)
    req = m.parse_request(data)
    return {
        "payee": payee,
        "payee_id": str(req.payee),
        "amount": net.money_of(money.minor),
        "currency": money.currency.code,
        "reference": reference,
        **_deliver(data, out, as_json),
    }


def pay(
    net: Network,
    payer: str,
    out: str,
    *,
    pin: str,
    request_file: str | None = None,
    to: str | None = None,
    amount: str | None = None,
    reference: str | None = None,
    as_json: bool = False,
    confirm: Callable[[dict[str, Any]], bool] | None = None,
    encrypt: bool = True,
) -> dict[str, Any]:
    """Pay from ``payer``: answer a request file, or one-way to a payee id (or known name).
    ``confirm``, given what a request asks (``request_details``), may decline: nothing is
    signed then. A payment is sealed for the payee's key, unless ``encrypt`` is False: the key
    the registry records beside the payee's certificate, if it holds one that verifies and
    binds a key (``_certified_key``), else the key its request carries. (A request is unsigned:
    whoever carried it may have put its own key in it, or removed it.)"""
    entry = net.wallet(payer)
    _check_destination(out)
    if entry.lost or entry.refunded:  # its owner said the device is gone: it pays no more
        state = "reported lost and refunded" if entry.refunded else "reported lost"
        raise CliRefusal(f"wallet {payer} was {state}: it cannot pay")
    # Read the input, and have it confirmed, before locking the wallet: in a pipeline the
    # input may come from a command that waits for this wallet's lock.
    req_bytes = None if request_file is None else files.read_message(request_file)
    req = None if req_bytes is None else _parsed_request(req_bytes)
    if req is not None and confirm is not None and not confirm(request_details(net, req)):
        raise CliRefusal("payment not confirmed: nothing was signed")
    seal_for = req.encryption_key if req is not None and encrypt else None
    with net.se(payer, pin) as se:
        t = now()
        if req is not None and req_bytes is not None:
            if encrypt:  # the certified key over the unsigned request's
                found = net.directory_of(req.payee)
                seal_for = _certified_key(se.trust, se.params, *found, req.payee, t) or seal_for
            data = se.pay(req_bytes, t)
            mode = "request"
        else:
            assert to is not None and amount is not None  # checked by the command
            payee = net.resolve_payee(to)
            if encrypt:
                seal_for = _certified_key(se.trust, se.params, *net.directory_of(payee), payee, t)
            data = se.pay_to(payee, net.money(amount).minor, t, reference)
            mode = "one-way"
        status = se.status(now())
    p = m.parse_payment(data)
    message = data if seal_for is None else sealed.seal(data, seal_for)
    try:
        delivered = _deliver(message, out, as_json)
    except OSError as exc:  # the folder was checked, but a disk can fill or a folder vanish
        raise CliRefusal(
            f"payment #{p.counter} of {net.show(p.amount)} to {net.name_of(p.payee)} was "
            f"signed (balance now {net.show(status.balance)}) but could not be written to "
            f"{out} ({exc.strerror or exc}): it stays in {payer}'s log, so the ledger learns "
            "of it at the next sync and pays the payee's account once it is too old to be "
            "received (`offcash ledger release-torn`)"
        ) from None
    return {
        "payer": payer,
        "payee": net.name_of(p.payee),
        "payee_id": str(p.payee),
        "amount": net.money_of(p.amount),
        "currency": p.currency,
        "counter": p.counter,
        "mode": mode,
        "reference": p.reference or (req.reference if req is not None else None),
        "balance": net.money_of(status.balance),
        "encrypted": seal_for is not None,
        **delivered,
    }


def _certified_key(
    trust: TrustStore,
    params: NetworkParams,
    certificate: bytes | None,
    key: bytes | None,
    payee: WalletId,
    at: int,
) -> bytes | None:
    """The KEM key to seal a payment to ``payee`` for: the directory's ``key``, once
    ``payee``'s certificate verifies against the payer's trust store, names ``payee`` and
    binds the key's SHA-256. None (in the clear) if the directory holds no such certificate,
    or it binds no key, or it is of another algorithm than the network's (from before an
    algorithm migration) and expired at ``at``: the payee's SE may have replaced the key it
    binds at its re-key and forgotten it since, and a payment sealed for it would never open
    (docs/PROTOCOL.md section 8). ``CliRefusal``, before anything is signed, if
    the certificate binds a key the directory does not hold (missing, altered or unusable):
    the directory was tampered with, and its key is neither sealed for (whoever swapped it
    would read the payment) nor silently dropped (a downgrade to the clear); ``--no-encrypt``
    is the payer's explicit choice."""
    if certificate is None:
        return None
    try:
        cert = trust.wallet_certificate(certificate, None)
    except VerificationError:
        return None  # a stale directory entry (e.g. from before a migration): in the clear
    if cert.wallet_id != payee or cert.encryption_key_digest is None:
        return None
    if cert.algorithm is not params.algorithm and at > cert.not_after:
        return None  # a pre-migration certificate, expired: the key it binds may be retired
    refusal = (
        f"the directory's encryption key for {payee} is not the one its certificate binds "
        "(the network folder's registry was altered or damaged): nothing was signed. Sync "
        "the payee's wallet to record its key again, or pay with --no-encrypt"
    )
    if key is None or not cert.certifies_encryption_key(key):
        raise CliRefusal(refusal)
    try:
        sealed.check_public_key(key)
    except ValueError:
        raise CliRefusal(refusal) from None
    return key


def request_details(net: Network, req: m.PaymentRequest) -> dict[str, Any]:
    """What a payment request asks, for the payer to check before paying: the amount, the
    payee's wallet id and the name this network folder knows it by (``known``), the name the
    request gives itself (unsigned: a hint only) and the reference."""
    known = net.name_of(req.payee)
    return {
        "amount": req.money.format(),
        "currency": req.currency,
        "payee_id": str(req.payee),
        "payee": known if known != str(req.payee) else None,
        "payee_says": req.payee_name,
        "reference": req.reference,
    }


def describe_request(d: dict[str, Any]) -> str:
    """One line: ``12.50 EUR to bob-phone (wallet ID), reference 'bicycle'``."""
    if d["payee"] is not None:
        who = f"{d['payee']} (wallet {d['payee_id']})"
    else:
        said = f" calling itself {d['payee_says']!r}" if d["payee_says"] else ""
        who = f"wallet {d['payee_id']}{said}, unknown to this network folder"
    ref = f", reference {d['reference']!r}" if d["reference"] else ", no reference"
    return f"{d['amount']} {d['currency']} to {who}{ref}"


def _ask(d: dict[str, Any]) -> bool:
    output.say(f"The request asks {describe_request(d)}.", stderr=True)
    return typer.confirm("Pay it?", default=False, err=True)


def receive(
    net: Network, payee: str, source: str, *, pin: str, receipt_out: str | None = None
) -> dict[str, Any]:
    """Verify and credit the payment in ``source`` to ``payee``'s wallet."""
    data = files.read_message(source)  # before the lock: it may come from a pipeline
    encrypted = sealed.is_sealed(data)
    with net.se(payee, pin) as se:
        try:
            got = se.receive(opened(se, payee, data) if encrypted else data, now())
        except DecodeError:
            refuse_if_request(data)
            refuse_if_text(data, "payment")
            raise
        except VerificationError as exc:
            _refuse_if_not_migrated(net, payee, exc)
            raise
        status = se.status(now())
    if receipt_out is not None and got.receipt is not None:
        files.write_message(got.receipt, receipt_out)
    return {
        "payee": payee,
        "payer": net.name_of(got.payer),
        "payer_id": str(got.payer),
        "amount": net.money_of(got.amount),
        "currency": status.currency,
        "counter": got.counter,
        "duplicate": got.duplicate,
        "encrypted": encrypted,
        "balance": net.money_of(status.balance),
        "receipt": receipt_out,
    }


def opened(se: WalletSE, payee: str, data: bytes) -> bytes:
    """The payment sealed in ``data``, opened by ``payee``'s SE; a refusal names the payee (a
    sealed message names no recipient, so a payment for another wallet and an altered one
    cannot be told apart) and says that a payment meant for it is not lost: settlement pays
    a payment no payee presents to the payee's owner once it is too old to be accepted
    offline (docs/SETTLEMENT.md, "Torn payments")."""
    try:
        return se.open_sealed(data)
    except CannotDecrypt as exc:
        why = "" if str(exc) == sealed.NOT_FOR_THIS_KEY else f" ({exc})"
        days = max(1, round((se.params.max_payment_age + se.params.clock_skew) / 86_400))
        raise CannotDecrypt(
            f"this payment does not open with {payee}'s key: it was sealed for another "
            f"wallet, or altered on the way{why}. If it was meant for {payee}, nothing is "
            f"lost: once the payer syncs, settlement pays it to {payee}'s owner's account "
            f"about {days} {'day' if days == 1 else 'days'} after the payment"
        ) from None


def _refuse_if_not_migrated(net: Network, payee: str, exc: VerificationError) -> None:
    """After ``network migrate``, an algorithm refusal most often means the payee has not
    synced since (its SE does not know the new root yet): say how to receive."""
    if exc.rejection is not Rejection.ALGORITHM_NOT_ALLOWED or net.config.legacy_algorithm is None:
        return
    raise VerificationError(
        exc.rejection,
        f"{exc.detail}; if {payee} has not synced since the network moved to "
        f"{net.config.algorithm}, sync it (`offcash wallet sync {payee}`) and receive again",
    ) from None


def _parsed_request(data: bytes) -> m.PaymentRequest:
    """The payment request ``data`` holds (``DecodeError`` if none, said as for text if it is
    text that is not offcash's)."""
    try:
        return m.parse_request(data)
    except DecodeError:
        refuse_if_text(data, "request")
        raise


def refuse_if_text(data: bytes, what: str) -> None:
    """Say so when a message that does not decode is printable text: the transports read text
    without an ``OC1:``/``OC1B64:`` prefix as raw CBOR (a renamed binary file still reads),
    and then only CBOR's complaint would be shown. A message in CBOR starts with a tag or an
    array or map head (0x80 and above), so it is never printable text itself."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    if not text.strip() or not all(c.isprintable() or c.isspace() for c in text):
        return
    raise DecodeError(
        what,
        "this is text but not an offcash message: an offcash message in text starts with OC1: "
        "(or OC1B64:) and must arrive exactly as written (same case, nothing added or cut)",
    )


def refuse_if_request(data: bytes) -> None:
    """Say so when what was given to ``receive`` is a payment request, not a payment."""
    try:
        m.parse_request(data)
    except DecodeError:
        return
    raise DecodeError(
        "payment",
        "this is a payment request, not a payment: the payer answers it with "
        "`offcash wallet pay PAYER --request FILE`",
    )


@app.command("request")
def request_cmd(
    ctx: typer.Context,
    payee: Annotated[str, typer.Argument(help="Name of the wallet that asks to be paid.")],
    amount: Annotated[str, typer.Argument(help="Amount, e.g. 12.50.")],
    out: Annotated[str, typer.Option("--out", "-o", help="FILE.png, FILE.txt, FILE or - .")],
    reference: Annotated[str | None, typer.Option(help="Free text shown to the payer.")] = None,
    pin_file: PinFile = None,
    as_json: Json = False,
) -> None:
    """OFFLINE: write PAYEE's payment request for AMOUNT (a QR code when --out ends in .png)."""
    net = open_network(ctx)
    r = request(
        net,
        payee,
        amount,
        out,
        pin=read_pin(pin_file, payee),
        reference=reference,
        as_json=as_json,
    )
    output.emit(
        r,
        as_json,
        lambda r: output.say(
            f"{r['payee']} requests {r['amount']} {r['currency']}: request written to {r['out']}",
            stderr=out == "-",
        ),
    )


@app.command("pay")
def pay_cmd(
    ctx: typer.Context,
    payer: Annotated[str, typer.Argument(help="Name of the paying wallet.")],
    out: Annotated[str, typer.Option("--out", "-o", help="FILE.png, FILE.txt, FILE or - .")],
    request_file: Annotated[
        str | None, typer.Option("--request", "-r", help="The payee's request (any form).")
    ] = None,
    to: Annotated[str | None, typer.Option(help="One-way: payee wallet id (or name).")] = None,
    amount: Annotated[str | None, typer.Option(help="One-way: amount, e.g. 12.50.")] = None,
    reference: Annotated[str | None, typer.Option(help="One-way: free text.")] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Pay a --request without asking to confirm.")
    ] = False,
    no_encrypt: Annotated[
        bool,
        typer.Option(
            "--no-encrypt",
            help="Do not seal the payment for the payee's key (the registry's, which its "
            "certificate binds, else its request's).",
        ),
    ] = False,
    pin_file: PinFile = None,
    as_json: Json = False,
) -> None:
    """OFFLINE: sign a payment from PAYER, answering --request or one-way --to/--amount.

    With --request, the amount, the payee (name and wallet id) and the reference are shown
    and, on a terminal, confirmed first (--yes skips the question). This folder's registry
    holds the encryption key of a payee it knows (the key recorded beside its certificate,
    which must bind that key, else nothing is signed), and a request carries one (used for a
    payee the registry does not know: a request is unsigned): the payment is then sealed for
    the payee, so that whoever carries it (chat, mail, a relay) reads nothing but its size
    (--no-encrypt sends it in the clear)."""
    if (request_file is None) == (to is None):
        raise typer.BadParameter("give either --request FILE or --to PAYEE_ID --amount X")
    if to is not None and amount is None:
        raise typer.BadParameter("--to needs --amount")
    net = open_network(ctx)
    r = pay(
        net,
        payer,
        out,
        pin=read_pin(pin_file, payer),
        request_file=request_file,
        to=to,
        amount=amount,
        reference=reference,
        as_json=as_json,
        confirm=None if yes or not sys.stdin.isatty() else _ask,
        encrypt=not no_encrypt,
    )
    output.emit(
        r,
        as_json,
        lambda r: output.say(
            f"{r['payer']} pays {r['amount']} {r['currency']} to {r['payee']} (wallet "
            f"{r['payee_id']}"
            + (f", reference {r['reference']!r}" if r["reference"] else "")
            + f"; payment #{r['counter']}, balance now {r['balance']} {r['currency']}): "
            f"{'payment, encrypted for the payee,' if r['encrypted'] else 'payment'} "
            f"written to {r['out']}",
            stderr=out == "-",
        ),
    )


@app.command("receive")
def receive_cmd(
    ctx: typer.Context,
    payee: Annotated[str, typer.Argument(help="Name of the receiving wallet.")],
    source: Annotated[str, typer.Argument(help="Payment: .png QR, text, raw CBOR, or - (stdin).")],
    receipt: Annotated[str | None, typer.Option(help="Write the signed receipt here.")] = None,
    pin_file: PinFile = None,
    as_json: Json = False,
) -> None:
    """OFFLINE: verify a payment and credit it to PAYEE (a re-sent one is not credited twice)."""
    net = open_network(ctx)
    r = receive(net, payee, source, pin=read_pin(pin_file, payee), receipt_out=receipt)

    def render(r: dict[str, Any]) -> None:
        c = r["currency"]
        if r["duplicate"]:
            output.say(
                f"{r['payee']} already received this payment of {r['amount']} {c} from "
                f"{r['payer']}: not credited again (balance {r['balance']} {c})"
            )
        else:
            output.say(
                f"{r['payee']} received {r['amount']} {c} from {r['payer']} "
                f"(verified offline; balance now {r['balance']} {c})"
            )

    output.emit(r, as_json, render)
