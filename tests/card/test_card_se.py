"""A card wallet over a real socket: the whole payment life with a software wallet, both ways.

Each card here is the applet in a thread behind a local TCP socket (``CardFactory``), reached
by ``CardSecureElement`` through the vpcd protocol, the APDU codec, chaining and GET RESPONSE
(or extended length); every algorithm, post-quantum ones (payments of ~9 KB) included."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from offcash.card.kind import CardFactory
from offcash.domain.ids import WalletId
from offcash.protocol.exchange import PayeeSide, PayerSide
from offcash.se.card.host import CardSecureElement
from offcash.se.state import SEState

from harness import T0, PilotNetwork


@pytest.fixture(params=[False, True], ids=["short+chaining", "extended"])
def factory(request: pytest.FixtureRequest) -> Iterator[CardFactory]:
    f = CardFactory(extended=request.param)
    yield f
    f.close()


def _card(
    net: PilotNetwork, factory: CardFactory, folder: Path, balance: int = 0
) -> CardSecureElement:
    se = factory.create(folder, net.params, net.central_bank.certificate_der)
    net.wallet(balance, se=se)  # enrol (and fund) through the card's APDUs
    return se


def _wid(se: object) -> WalletId:
    wid = se.status(T0).wallet_id  # type: ignore[attr-defined]
    assert wid is not None
    return wid


def test_card_pays_software_and_back_with_sealed_payments_and_receipts(
    network: PilotNetwork, factory: CardFactory, tmp_path: Path
) -> None:
    card = _card(network, factory, tmp_path / "card", 1_000)
    soft = network.wallet(500, bank="Bank B")
    for payer, payee, amount in ((card, soft, 300), (soft, card, 120)):
        payee_side, payer_side = PayeeSide(payee), PayerSide(payer)
        payer_side.receive_request(payee_side.start(amount, T0, "coffee", "Shop"))
        data = payer_side.pay(T0)
        got = payee_side.receive_payment(data, T0)
        assert got.receipt is not None
        payer_side.receive_receipt(got.receipt)  # the card's trust store checks the receipt
        again = payee_side.receive_payment(payer_side.resend(), T0)  # a torn transfer
        assert again.duplicate and again.amount == amount
    assert card.status(T0).balance == 1_000 - 300 + 120
    assert soft.status(T0).balance == 500 + 300 - 120
    assert card.params == network.params
    assert card.trust.bank_certificates() == network.bank_ders


def test_sync_unload_and_a_restart_keep_the_books(
    network: PilotNetwork, factory: CardFactory, tmp_path: Path
) -> None:
    card = _card(network, factory, tmp_path / "card", 1_000)
    soft = network.wallet(0, bank="Bank B")
    soft.receive(card.pay_to(_wid(soft), 250, T0, "rent"), T0)
    upload = card.sync_upload(T0 + 5)
    assert [e.amount for e in upload.entries] == [1_000, 250]
    network.sync(card, T0 + 10)
    st = card.status(T0 + 10)
    assert (st.balance, st.counter, st.log_entries, st.last_sync) == (750, 1, 0, T0 + 10)
    request = card.unload(50, T0 + 20)
    assert request and card.status(T0 + 20).balance == 700
    # the card restarts: the state is what it persisted, the PIN is asked again
    before = card.status(T0 + 20)
    again = factory.reopen(tmp_path / "card")
    assert again.status(T0 + 20) == before
    assert SEState.decode(factory.read_state(tmp_path / "card")).balance == 700


def test_a_cloned_card_state_is_what_the_attacker_wrote(
    p256: PilotNetwork, factory: CardFactory, tmp_path: Path
) -> None:
    card = _card(p256, factory, tmp_path / "card", 1_000)
    snapshot = factory.read_state(tmp_path / "card")
    card.pay_to(WalletId(b"\x05" * 12), 400, T0)
    factory.write_state(tmp_path / "card", snapshot)  # a rollback by someone who broke the chip
    assert factory.reopen(tmp_path / "card").status(T0).balance == 1_000


def test_a_request_paid_twice_gets_the_same_payment(
    network: PilotNetwork, factory: CardFactory, tmp_path: Path
) -> None:
    card = _card(network, factory, tmp_path / "card", 1_000)
    soft = network.wallet(0)
    request = soft.request(100, T0)
    first = card.pay(request, T0)
    assert card.pay(request, T0) == first
    assert card.sent_payment(1) == first
    assert card.status(T0).balance == 900
