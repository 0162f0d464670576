"""``offcash wallet create|fund|unload|show|sync|report-lost|refund-lost``: online.

Theory of operation: each wallet is a sealed software secure element in the network folder
(``wallets/NAME.se``) plus a registry entry (name -> wallet id, bank, owner). Online commands
pair one SE operation with one settlement call: create (SE makes a key and CSR; the bank
certifies it), fund (the bank debits the owner's account for a voucher; the SE loads it),
unload (the SE debits and signs; the bank credits the account), sync (the SE signs its log;
settlement settles it, acknowledges and renews the certificate), report-lost (the bank revokes
the wallet now) and refund-lost (after the claim window, the wallet's balance goes back to its
owner's account, once). ``show`` reads only the SE: its balance, each limit and what is left of
it until the next sync, and a plain status (active, certificate expired, revoked). ``list``
shows every wallet of the folder; ``change-pin`` re-seals a wallet's file under a new PIN.
The offline payment commands of the same group live in ``offcash.cli.payments``.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated, Any

import typer

from offcash.cli import output, service
from offcash.cli.amount import Amount
from offcash.cli.card import check_card_secrets
from offcash.cli.common import Json, PinFile, Server, open_network
from offcash.cli.config import (
    SE_KINDS,
    CliRefusal,
    Network,
    UsageProblem,
    WalletEntry,
    WalletSE,
    check_name,
    now,
    read_new_pin,
    read_pin,
)
from offcash.cli.errors import span_text
from offcash.crypto import challenge, pki
from offcash.crypto.algorithms import spki
from offcash.domain.ids import WalletId
from offcash.errors import OffcashError, Rejection, VerificationError, WrongPin
from offcash.se.card.eeprom import PIN_TRIES
from offcash.se.card.host import CardSecureElement
from offcash.se.card.wire import AID
from offcash.se.interface import Status
from offcash.se.storage import SealedFile

app = typer.Typer(no_args_is_help=True)


def create(
    net: Network,
    name: str,
    bank: str,
    owner: str,
    *,
    pin: str,
    server: str | None = None,
    se_kind: str = "software",
    reader: str | None = None,
) -> dict[str, Any]:
    """Create wallet ``name`` for account ``owner`` at ``bank`` and enrol its SE: a software
    SE file, or (``se_kind`` "card") a card personalised with ``pin`` and a new PUK, in
    ``reader`` or else in a new vpcd card process."""
    check_name(name)
    if se_kind not in SE_KINDS:
        raise UsageProblem(f"--se {se_kind}: the kinds are {', '.join(SE_KINDS)}")
    if reader is not None and se_kind != "card":
        raise UsageProblem("--reader names a card reader: use it with --se card")
    if se_kind == "card":
        check_card_secrets(pin=pin)
    svc = service.connect(net, server)
    puk = None
    with net.update():  # the name check, the SE file and the registry entry as one step
        if name in net.wallets or net.se_path(name).exists() or net.card_path(name).exists():
            raise CliRefusal(f"a wallet named {name!r} already exists")
        if net.account(owner).bank != bank:
            raise CliRefusal(f"account {owner!r} is held at {net.account(owner).bank}, not {bank}")
        try:
            se: WalletSE
            if se_kind == "card":
                se, puk = net.new_card(name, pin, reader)
            else:
                se = net.new_se(name, pin)
            csr = se.csr()
            enrolment = svc.enroll(csr, owner, now())
            # The bank's clock dates the certificate: apply it at the time it came back.
            se.enroll(enrolment.certificate, enrolment.bank_certificates, enrolment.crls, now())
        except BaseException:
            net.se_path(name).unlink(missing_ok=True)
            if se_kind == "card" and reader is None:
                net.drop_card(name)
            raise
        net.wallets[name] = WalletEntry(
            name,
            str(enrolment.wallet_id),
            bank,
            owner,
            se=se_kind,
            reader=reader,
            certificate=base64.b64encode(enrolment.certificate).decode(),
            encryption_key=_encoded_key(csr),
        )
    r = show(net, name, pin=pin)
    return r if puk is None else {**r, "puk": puk}


def fund(
    net: Network, name: str, amount: str, *, pin: str, server: str | None = None
) -> dict[str, Any]:
    """Move ``amount`` from the owner's account into wallet ``name`` (a load voucher). A
    wallet with log entries the ledger has not seen syncs first (``_synced_first``)."""
    money = net.money(amount)
    wallet_id = WalletId.parse(net.wallet(name).wallet_id)
    svc = service.connect(net, server)
    _synced_first(net, name, pin, server)
    with net.se(name, pin) as se:  # no other process changes the SE between voucher and load
        voucher = svc.voucher(wallet_id, money.minor, now())
        se.load(voucher, now())
    return {**show(net, name, pin=pin), "loaded": net.money_of(money.minor)}


def unload(
    net: Network, name: str, amount: str, *, pin: str, server: str | None = None
) -> dict[str, Any]:
    """Move ``amount`` from wallet ``name`` back to the owner's account. A wallet with log
    entries the ledger has not seen syncs first (``_synced_first``)."""
    money = net.money(amount)
    svc = service.connect(net, server)
    _synced_first(net, name, pin, server)
    with net.se(name, pin) as se:
        request = se.unload(money.minor, now())
        svc.redeem_unload(request, now())  # if this fails, the next sync settles the unload
    return {**show(net, name, pin=pin), "unloaded": net.money_of(money.minor)}


def _synced_first(net: Network, name: str, pin: str, server: str | None) -> None:
    """Sync wallet ``name`` if its log holds entries the ledger has not seen: the ledger pays
    out (unload) and funds up to the certified maximum balance only what it can account for
    from the wallet's synced history (docs/SETTLEMENT.md), so an honest wallet that received
    or paid offline since its last sync would be refused until it syncs. A wallet that has not
    followed an algorithm migration syncs too (and re-keys): it could not check the new bank's
    voucher."""
    se = net.open_se(name, pin)
    if se.status(now()).log_entries or se.params != net.config.params:
        sync(net, name, pin=pin, server=server)


def show(net: Network, name: str, *, pin: str) -> dict[str, Any]:
    """Wallet ``name`` as its SE sees it (offline: reads only the SE file)."""
    entry = net.wallet(name)
    t = now()
    st = net.open_se(name, pin).status(t)
    limits = st.limits
    state, status = _status(entry, st, t)
    return {
        "wallet": name,
        "wallet_id": str(st.wallet_id),
        "bank": st.bank,
        "owner": entry.owner,
        "currency": st.currency,
        "balance": net.money_of(st.balance),
        "counter": st.counter,
        "offline_payments": st.offline_payments,
        "offline_value": net.money_of(st.offline_value),
        "log_entries": st.log_entries,
        "last_sync": _time(st.last_sync),
        "certificate_expires": _time(st.certificate_expires),
        "lost": entry.lost,
        "se": se_info(net, name),
        "limits": None
        if limits is None
        else {
            "max_balance": net.money_of(limits.max_balance),
            "max_payment": net.money_of(limits.max_payment),
            "max_offline_payments": limits.max_offline_payments,
            "max_offline_value": net.money_of(limits.max_offline_value),
            "max_offline_seconds": limits.max_offline_seconds,
        },
        "left": _left(net, st, t),
        "state": state,
        "status": status,
    }


def se_info(net: Network, name: str) -> dict[str, Any]:
    """The kind of wallet ``name``'s secure element, and for a card its reader and AID."""
    entry = net.wallet(name)
    if entry.se != "card":
        return {"kind": entry.se}
    return {"kind": "card", "reader": net.card_reader(name), "aid": AID.hex().upper()}


def _left(net: Network, st: Status, t: int) -> dict[str, Any] | None:
    """What is left of each limit until the next sync (offline counts reset at a sync)."""
    limits = st.limits
    if limits is None:
        return None
    since = t - st.last_sync if st.last_sync is not None else 0
    return {
        "balance_room": net.money_of(max(0, limits.max_balance - st.balance)),
        "max_payment_now": net.money_of(max(0, min(limits.max_payment, st.balance))),
        "offline_payments": max(0, limits.max_offline_payments - st.offline_payments),
        "offline_value": net.money_of(max(0, limits.max_offline_value - st.offline_value)),
        "offline_seconds": max(0, limits.max_offline_seconds - since),
    }


def _status(entry: WalletEntry, st: Status, t: int) -> tuple[str, str]:
    """The wallet's ``state`` for scripts (``active``, ``refunded``, ``lost``, ``revoked``,
    ``not-enrolled`` or ``expired``) and its ``status`` in plain words: why it cannot pay."""
    if entry.refunded:
        return "refunded", "revoked: reported lost, and its balance refunded to its owner"
    if entry.lost:
        return "lost", (
            "revoked: reported lost (`offcash wallet refund-lost` after the claim window)"
        )
    if entry.revoked:
        return "revoked", "revoked by settlement (a double spend or a log that does not add up)"
    if st.certificate_expires is None:
        return "not-enrolled", "not enrolled"
    if t > st.certificate_expires:
        return "expired", (
            f"certificate expired on {_time(st.certificate_expires)}: cannot pay or be paid; "
            "sync to renew it"
        )
    return "active", "active"


def sync(net: Network, name: str, *, pin: str, server: str | None = None) -> dict[str, Any]:
    """Upload wallet ``name``'s log; apply the acknowledgement and the renewed certificate."""
    svc = service.connect(net, server)
    with net.se(name, pin) as se:  # a payment made between upload and ack would be dropped
        if se.params != net.config.params:  # the network migrated: follow, re-key at this sync
            info = svc.network()
            if info.new_with_old is None or info.params != net.config.params:
                raise CliRefusal("the network's config and its ledger disagree on the algorithm")
            se.migrate(info.params, info.root, info.new_with_old, info.bank_certificates)
        t = now()
        upload, csr = se.sync_upload(t), se.csr()
        with output.progress(f"Settling {name}'s {output.log_entries(len(upload.entries))}..."):
            try:
                result = svc.sync(name, upload.report, upload.entries, csr, t)
            except service.RevokedAtSync as revoked:
                se.install_crls(revoked.crls, now())  # the SE learns it is revoked: stops paying
                _mark_revoked(net, name)
                raise
            except OffcashError as exc:
                if exc.code == "wallet-revoked":  # revoked before: fetch the CRL that says so
                    se.install_crls(svc.current_crls(now()), now())
                    _mark_revoked(net, name)
                raise
        # Applied at the time the answer came back: a server dates the renewed certificate
        # with its own clock, which may have ticked since ``t``.
        certificate = base64.b64encode(result.certificate).decode()
        if net.wallet(name).se == "card":  # a new key (migration) must not lock the card out
            _check_certifies_csr(result.certificate, csr)
            with net.update():
                net.wallet(name).next_certificate = certificate
        se.apply_sync(result.ack, result.certificate, result.bank_certificates, result.crls, now())
    with net.update():  # the renewed certificate and its KEM key, for payers to seal with
        entry = net.wallet(name)
        entry.certificate, entry.next_certificate = certificate, None
        entry.encryption_key = _encoded_key(csr)
    return {
        **show(net, name, pin=pin),
        "uploaded_entries": len(upload.entries),
        "settlement": result.summary,
    }


def _encoded_key(csr: bytes) -> str | None:
    """The KEM public key the SE's CSR asked the bank to bind (base64, for the registry)."""
    key = pki.csr_encryption_key(csr)
    return None if key is None else base64.b64encode(key).decode()


def _check_certifies_csr(certificate: bytes, csr: bytes) -> None:
    """Refuse (``BAD_CERTIFICATE``) a sync's certificate that does not certify the key of
    ``csr``, the request the authenticated card made in this session. Checked before the
    registry takes it as the card's pending certificate: the card is authenticated against
    that certificate's key before it gets the PIN, so one the answer's sender chose would let
    a card of that sender's pass as the wallet's (docs/SECURITY.md)."""
    if spki(challenge.certificate_key(certificate)) != spki(pki.csr_public_key(csr)):
        raise VerificationError(
            Rejection.BAD_CERTIFICATE,
            "the settlement's certificate is not for the key the card asked to certify",
        )


def _mark_revoked(net: Network, name: str) -> None:
    """Remember in the registry that settlement revoked wallet ``name`` (``wallet show``)."""
    with net.update():
        net.wallet(name).revoked = True


def report_lost(net: Network, name: str, server: str | None = None) -> dict[str, Any]:
    """Report wallet ``name`` lost: the bank revokes it and opens the refund claim."""
    svc = service.connect(net, server)
    with net.update():
        entry = net.wallet(name)
        svc.report_lost(WalletId.parse(entry.wallet_id), now())
        entry.lost = True
    return {
        "wallet": name,
        "wallet_id": entry.wallet_id,
        "revoked": True,
        "claim_window": net.claim_window,
    }


def refund_lost(net: Network, name: str, server: str | None = None) -> dict[str, Any]:
    """After the claim window, refund lost wallet ``name``'s balance to its owner's account:
    the balance at its last sync (plus vouchers since) minus its spends that surfaced since."""
    svc = service.connect(net, server)
    with net.update():
        entry = net.wallet(name)
        refunded = svc.refund_lost(WalletId.parse(entry.wallet_id), now())
        entry.lost = entry.refunded = True
    return {
        "wallet": name,
        "wallet_id": entry.wallet_id,
        "owner": entry.owner,
        "refunded": net.money_of(refunded),
        "currency": net.config.currency,
        "owner_balance": net.money_of(svc.balance(entry.owner)),
    }


def list_wallets(net: Network, *, pin: str) -> dict[str, Any]:
    """Every wallet of the folder: name, id, bank, owner, status and, when ``pin`` opens its
    secure element, its balance (``None`` for a wallet sealed with another PIN). A card that
    refused a PIN since its last right one is not tried (so listing never blocks a card)."""
    rows = []
    for name, entry in sorted(net.wallets.items()):
        balance: Amount | None
        try:
            if entry.se == "card" and (tries := _card_tries(net, name)) < PIN_TRIES:
                rows.append(_locked_card(entry, tries))
                continue
            st = net.open_se(name, pin).status(now())
            balance, (state, status) = net.money_of(st.balance), _status(entry, st, now())
        except WrongPin:
            balance, state = None, "locked"
            status = "locked: another PIN (see `wallet show --pin-file`)"
        except OffcashError as exc:  # a missing or damaged file: the others are still listed
            balance, state, status = None, "unreadable", f"unreadable: {exc}"
        rows.append(
            {
                "wallet": name,
                "wallet_id": entry.wallet_id,
                "bank": entry.bank,
                "owner": entry.owner,
                "balance": balance,
                "state": state,
                "status": status,
            }
        )
    return {"currency": net.config.currency, "wallets": rows}


def _card_tries(net: Network, name: str) -> int:
    """PIN tries left on card wallet ``name``'s card (asked without presenting a PIN)."""
    return net.card(name).pin_tries()


def _locked_card(entry: WalletEntry, tries: int) -> dict[str, Any]:
    """The ``list`` row of a card whose PIN was recently refused: ``list`` presents no PIN to
    it (a PIN for another wallet must not use up this card's tries)."""
    return {
        "wallet": entry.name,
        "wallet_id": entry.wallet_id,
        "bank": entry.bank,
        "owner": entry.owner,
        "balance": None,
        "state": "locked",
        "status": (
            f"locked: card with {tries} PIN {'try' if tries == 1 else 'tries'} left "
            "(see `wallet show --pin-file`)"
        ),
    }


def change_pin(net: Network, name: str, *, pin: str, new_pin: str) -> dict[str, Any]:
    """Re-seal wallet ``name``'s secure element under ``new_pin`` (the old PIN stops working)."""
    if not new_pin:
        raise UsageProblem("the new PIN is empty")
    se = net.open_se(name, pin)  # a wrong PIN is refused with the wallet named
    if isinstance(se, CardSecureElement):
        se.change_pin(pin, new_pin)  # CHANGE REFERENCE DATA: the card checks the old PIN
        return {"wallet": name, "pin_changed": True}
    store, state = SealedFile.open(net.se_path(name), pin)
    store.change_pin(state, new_pin)
    return {"wallet": name, "pin_changed": True}


def _time(epoch: int | None) -> str | None:
    if epoch is None:
        return None
    return output.utc_text(epoch)


def render_wallet(r: dict[str, Any]) -> None:
    """Print a wallet result as a table."""
    c = r["currency"]
    rows: list[list[object]] = [
        ["Wallet", f"{r['wallet']} ({r['wallet_id']})"],
        ["Status", r["status"]],
        ["Bank / owner", f"{r['bank']} / {r['owner']}"],
        ["Balance", f"{r['balance']} {c}"],
        [
            "Offline since sync",
            f"{r['offline_payments']} payment{'' if r['offline_payments'] == 1 else 's'}, "
            f"{r['offline_value']} {c} sent",
        ],
        ["Log entries", r["log_entries"]],
        ["Last sync", r["last_sync"]],
        ["Certificate expires", r["certificate_expires"]],
    ]
    lim, left = r["limits"], r["left"]
    if lim is not None and left is not None:
        rows += [
            ["Limits", "what is left until the next sync"],
            [
                "  Balance held",
                f"at most {lim['max_balance']} {c}: room for {left['balance_room']} {c} more",
            ],
            [
                "  One payment",
                f"at most {lim['max_payment']} {c} (now up to {left['max_payment_now']} {c})",
            ],
            [
                "  Offline payments",
                f"{left['offline_payments']} of {lim['max_offline_payments']} left",
            ],
            [
                "  Offline value sent",
                f"{left['offline_value']} of {lim['max_offline_value']} {c} left",
            ],
            [
                "  Offline time",
                f"{span_text(left['offline_seconds'])} of "
                f"{span_text(lim['max_offline_seconds'])} left",
            ],
        ]
    if r.get("se", {}).get("kind") == "card":
        rows.append(["Secure element", f"card {r['se']['aid']} in {r['se']['reader']}"])
    if r.get("puk"):
        rows.append(["PUK (shown once)", r["puk"]])
    if r.get("settlement"):
        rows.append(["Settlement", ", ".join(f"{k}: {v}" for k, v in r["settlement"].items())])
    output.print_table(f"Wallet {r['wallet']}", ["", "Value"], rows)


@app.command("create")
def create_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Wallet name, e.g. alice-phone.")],
    bank: Annotated[str, typer.Option(help="The bank that certifies the wallet.")],
    owner: Annotated[str, typer.Option(help="The account that owns the wallet.")],
    pin_file: PinFile = None,
    server: Server = None,
    se: Annotated[
        str,
        typer.Option(
            "--se",
            help="The wallet's secure element: software (a PIN-sealed file) or card "
            "(a smart card reached through PC/SC; see `offcash card --help`).",
        ),
    ] = "software",
    reader: Annotated[
        str | None,
        typer.Option(
            help="With --se card: the PC/SC reader holding a blank offcash card. Without it, "
            "the card is a virtual one, in a free vpcd reader slot."
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Create a wallet and enrol it with BANK: a sealed software secure element, or a card.

    With --se card, a smart card: its PIN is set now, and its PUK, which unblocks the PIN after
    three wrong tries, is shown once: keep it."""
    net = open_network(ctx)
    r = create(
        net,
        name,
        bank,
        owner,
        pin=read_pin(pin_file, name, new=True),
        server=server,
        se_kind=se,
        reader=reader,
    )
    output.emit(r, as_json, render_wallet)


@app.command("fund")
def fund_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Wallet name.")],
    amount: Annotated[str, typer.Argument(help="Amount, e.g. 100.00.")],
    pin_file: PinFile = None,
    server: Server = None,
    as_json: Json = False,
) -> None:
    """ONLINE: move AMOUNT from the owner's account into the wallet."""
    r = fund(open_network(ctx), name, amount, pin=read_pin(pin_file, name), server=server)
    output.emit(
        r,
        as_json,
        lambda r: output.say(
            f"{r['wallet']} loaded {r['loaded']} {r['currency']}: balance {r['balance']} "
            f"{r['currency']}"
        ),
    )


@app.command("unload")
def unload_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Wallet name.")],
    amount: Annotated[str, typer.Argument(help="Amount, e.g. 10.00.")],
    pin_file: PinFile = None,
    server: Server = None,
    as_json: Json = False,
) -> None:
    """ONLINE: move AMOUNT from the wallet back to the owner's account."""
    r = unload(open_network(ctx), name, amount, pin=read_pin(pin_file, name), server=server)
    output.emit(
        r,
        as_json,
        lambda r: output.say(
            f"{r['wallet']} unloaded {r['unloaded']} {r['currency']} to {r['owner']}: balance "
            f"{r['balance']} {r['currency']}"
        ),
    )


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Wallet name.")],
    pin_file: PinFile = None,
    as_json: Json = False,
) -> None:
    """Show a wallet's balance, status, limits and what is left of each (offline).

    Also its offline counters since the last sync and its certificate's expiry; says plainly
    when the certificate has expired or the wallet is revoked."""
    output.emit(show(open_network(ctx), name, pin=read_pin(pin_file, name)), as_json, render_wallet)


@app.command("sync")
def sync_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Wallet name.")],
    pin_file: PinFile = None,
    server: Server = None,
    as_json: Json = False,
) -> None:
    """ONLINE: settle the wallet's offline log, renew its certificate, fetch CRLs."""
    r = sync(open_network(ctx), name, pin=read_pin(pin_file, name), server=server)
    output.emit(r, as_json, render_wallet)


@app.command("report-lost")
def report_lost_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Wallet name.")],
    server: Server = None,
    as_json: Json = False,
) -> None:
    """ONLINE: report a wallet lost; the bank revokes it and refunds after the claim window."""
    r = report_lost(open_network(ctx), name, server)
    output.emit(
        r,
        as_json,
        lambda r: output.say(
            f"{r['wallet']} reported lost: revoked now; `offcash wallet refund-lost {r['wallet']}` "
            f"pays its balance to its owner after the claim window ({_span(r['claim_window'])})"
        ),
    )


@app.command("refund-lost")
def refund_lost_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Wallet name.")],
    server: Server = None,
    as_json: Json = False,
) -> None:
    """ONLINE: after the claim window, refund a lost wallet's balance to its owner (once)."""
    r = refund_lost(open_network(ctx), name, server)
    output.emit(
        r,
        as_json,
        lambda r: output.say(
            f"{r['wallet']} (lost): {r['refunded']} {r['currency']} refunded to {r['owner']}, "
            f"whose account now holds {r['owner_balance']} {r['currency']}"
        ),
    )


def _span(seconds: int) -> str:
    if seconds % 86400 == 0 and seconds:
        return f"{seconds // 86400} days"
    return f"{seconds} s"


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    pin_file: PinFile = None,
    as_json: Json = False,
) -> None:
    """List the wallets: name, id, bank, owner, status and balance (offline).

    A wallet sealed with another PIN than the one given shows no balance."""
    r = list_wallets(open_network(ctx), pin=read_pin(pin_file))

    def render(r: dict[str, Any]) -> None:
        c = r["currency"]
        output.print_table(
            "Wallets",
            ["Wallet", "Wallet id", "Bank", "Owner", "Balance", "Status"],
            [
                [
                    w["wallet"],
                    w["wallet_id"],
                    w["bank"],
                    w["owner"],
                    "-" if w["balance"] is None else f"{w['balance']} {c}",
                    w["status"],
                ]
                for w in r["wallets"]
            ],
        )

    output.emit(r, as_json, render)


@app.command("change-pin")
def change_pin_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Wallet name.")],
    new_pin_file: Annotated[
        Path | None,
        typer.Option("--new-pin-file", help="File whose first line is the new PIN."),
    ] = None,
    pin_file: PinFile = None,
    as_json: Json = False,
) -> None:
    """Change a wallet's PIN (offline): re-seal its secure element under the new PIN.

    The current PIN comes as usual (--pin-file, OFFCASH_PIN, a prompt on a terminal, or the
    development PIN); the new one from --new-pin-file, or a prompt (twice) on a terminal."""
    net = open_network(ctx)
    old = read_pin(pin_file, name)
    new = read_new_pin(new_pin_file, name)
    r = change_pin(net, name, pin=old, new_pin=new)
    output.emit(
        r,
        as_json,
        lambda r: output.say(f"{r['wallet']}: PIN changed; the old PIN no longer opens it"),
    )
