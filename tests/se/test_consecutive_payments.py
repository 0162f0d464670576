"""Consecutive offline payments: received money is spendable at once, over any number of hops,
and a payment's size does not grow with the hops (it carries no history). Against each SE kind
(tests/se_kinds.py)."""

from __future__ import annotations

import itertools

from offcash.protocol import messages as m

from harness import T0, PilotNetwork
from se_kinds import network_per_kind

__all__ = ["network_per_kind"]

HOPS = 10
#: Certificates differ by a few bytes (random serials, DER-encoded ECDSA signatures).
SIZE_JITTER = 8


def test_ten_hops_with_received_money_only(network: PilotNetwork) -> None:
    wallets = [network.wallet(5_000), *(network.wallet() for _ in range(HOPS))]
    sizes = []
    amount = 5_000
    for hop, (payer, payee) in enumerate(itertools.pairwise(wallets)):
        now = T0 + 60 * hop
        payment = payer.pay(payee.request(amount, now), now)
        received = payee.receive(payment, now)
        assert not received.duplicate and received.amount == amount
        kept = 0 if hop == 0 else 100  # each hop passes on all but 100 of what it received
        assert payee.status(now).balance == amount and payer.status(now).balance == kept
        sizes.append(len(payment))
        amount -= 100
    assert max(sizes) - min(sizes) <= SIZE_JITTER, sizes
    assert sizes[-1] <= sizes[0] + SIZE_JITTER
    # the last payee holds what came through nine offline payees, none of whom ever synced
    last = wallets[-1].status(T0 + 3600)
    assert last.balance == 5_000 - 100 * (HOPS - 1)
    assert last.log_entries == 1 and wallets[5].status(T0).log_entries == 2
    assert all(w.status(T0).last_sync == T0 for w in wallets)


def test_chain_of_payments_settles_consistently(network: PilotNetwork) -> None:
    """Every wallet's log explains its balance: loads + received - sent - unloaded."""
    wallets = [network.wallet(3_000), *(network.wallet() for _ in range(4))]
    for payer, payee in itertools.pairwise(wallets):
        payee.receive(payer.pay(payee.request(1_000, T0), T0), T0)
        payee.receive(wallets[0].pay_to(payee.status(T0).wallet_id, 100, T0), T0)  # type: ignore[arg-type]
    for w in wallets:
        upload = w.sync_upload(T0)
        signs = {"LOADED": 1, "RECEIVED": 1, "SENT": -1, "UNLOADED": -1}
        total = sum(signs[e.type.name] * e.amount for e in upload.entries)
        assert total == w.status(T0).balance == m.parse_report(upload.report).balance
