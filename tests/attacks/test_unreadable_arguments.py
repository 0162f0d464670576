"""The SE signs what nobody can read (issue 9, finding 10).

Through the library, ``pay_to`` given a payee of the wrong type (a ``str`` instead of a
``WalletId``) made the software SE sign, log and debit a payment no decoder accepts; at the next
sync the ledger found two reconcile anomalies and revoked the honest wallet. Now every SE
operation checks its arguments first (``offcash.se.arguments``) and every signer decodes the
payload it is about to sign with the payee's strict decoder (``messages.readable_payload``):
a bad argument is a ``TypeError`` or ``ValueError`` and the sealed state is byte for byte as
it was.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from attackkit import ACCOUNT, assert_books, party, se_balance, sealed_wallet
from ledgerkit import World

from harness import T0


def test_wrong_argument_types_sign_nothing_and_the_wallet_stays_honest(
    world: World, tmp_path: Path
) -> None:
    alice = sealed_wallet(world, tmp_path / "alice", 5_000, "Bank A")
    bob = party(world, 0, "Bank B")
    request = bob.se.request(1_000, T0 + 1)
    se: Any = alice.se  # the library user's mistakes, which mypy would have caught
    bad: list[tuple[Callable[[], object], type[Exception]]] = [
        (lambda: se.pay_to(str(bob.wid), 1_000, T0 + 2), TypeError),  # the case
        (lambda: se.pay_to(bob.wid.raw, 1_000, T0 + 2), TypeError),
        (lambda: se.pay_to(bob.wid, 1_000.0, T0 + 2), TypeError),
        (lambda: se.pay_to(bob.wid, True, T0 + 2), TypeError),
        (lambda: se.pay_to(bob.wid, 1_000, float(T0)), TypeError),
        (lambda: se.pay_to(bob.wid, 1_000, 2**41), ValueError),
        (lambda: se.pay_to(bob.wid, 1_000, T0 + 2, "x" * 141), ValueError),
        (lambda: se.pay_to(bob.wid, 1_000, T0 + 2, b"ref"), TypeError),
        (lambda: se.pay(request.hex(), T0 + 2), TypeError),
        (lambda: se.pay(request, str(T0 + 2)), TypeError),
        (lambda: se.unload("100", T0 + 2), TypeError),
        (lambda: se.unload(100, -1), ValueError),
        (lambda: se.request(100, T0 + 2, reference="x" * 141), ValueError),
        (lambda: se.request(100, T0 + 2, payee_name="x" * 65), ValueError),
        (lambda: se.request(100, T0 + 2, nonce=b"short"), ValueError),
    ]
    before = alice.state()
    for call, error in bad:
        with pytest.raises(error):
            call()
        assert alice.state() == before
    status = alice.se.status(T0 + 3)
    assert (status.balance, status.counter, status.log_entries) == (5_000, 0, 1)

    bob.se.receive(alice.se.pay(request, T0 + 4), T0 + 5)  # the SE works on, honestly
    res = world.sync(alice.se, T0 + 10)
    assert res.ack is not None and res.anomalies == [] and res.refused == []
    world.sync(bob.se, T0 + 20)
    assert world.ledger.wallet_status(alice.wid) == "active"
    assert world.ledger.anomalies(alice.wid) == []
    assert_books(world, {bob.account: ACCOUNT, alice.account: ACCOUNT - 5_000})
    assert (se_balance(alice), se_balance(bob)) == (4_000, 1_000)
