"""The ledger with its CA keys in a SoftHSM2 token: only references are stored, a reopened
ledger signs through the token, and a bank added later gets its key in the same token."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from offcash.crypto import algorithms, hsm
from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.domain.ids import WalletId
from offcash.ledger import LedgerService
from offcash.ledger import schema as s
from offcash.ledger.errors import Conflict
from offcash.protocol import messages as m
from softhsm import softhsm

from harness import T0


def test_references_only_and_add_bank_in_the_token(
    db_target: tuple[str, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    h = softhsm()
    monkeypatch.setenv(hsm.PIN_ENV, h.pin)
    url, schema = db_target
    root_key = hsm.open_token(h.module, h.label).generate(SignatureAlgorithm.P256, "Ledger Root")
    ledger = LedgerService.open(url, schema=schema)
    ledger.create_network("EUR", SignatureAlgorithm.P256, "Ledger Root", ["Bank A"], T0, root_key)
    with pytest.raises(ValueError, match="algorithm"):
        LedgerService.open(url, schema=schema).create_network(
            "EUR", SignatureAlgorithm.ED25519, "X", [], T0, root_key
        )
    ledger.add_bank("Bank C", T0)
    ledger.close()

    reopened = LedgerService.open(url, schema=schema)
    auth = reopened.authorities
    keys = [auth.central_bank.key, *(b.key for b in auth.banks.values())]
    assert all(isinstance(k, hsm.HsmSigner) and k.ref.token == h.label for k in keys)
    bank_c = auth.bank("Bank C")
    voucher = m.parse_voucher(bank_c.voucher(WalletId.random(), 100, "EUR", T0))
    public = bank_c.certificate.public_key()
    assert algorithms.verify(public, voucher.envelope.signature, voucher.envelope.to_be_signed())  # type: ignore[arg-type]
    with reopened.engine.connect() as conn:
        stored = [bytes(r[0]) for r in conn.execute(sa.select(s.authorities.c.key_der))]
    reopened.close()
    assert len(stored) == 3 and all(v.startswith(b"pkcs11:") for v in stored)


def test_a_network_with_its_ca_keys_in_a_token_does_not_migrate_them_out(
    db_target: tuple[str, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack review: `network migrate` on a network made with `--hsm` made the new ML-DSA root
    and bank keys in memory and stored them as PKCS#8 in the database (whose copy then mints
    certificates and vouchers), silently undoing the token's protection. It is refused (the
    token cannot make ML-DSA keys here), nothing changes, and only references stay stored."""
    h = softhsm()
    monkeypatch.setenv(hsm.PIN_ENV, h.pin)
    url, schema = db_target
    root_key = hsm.open_token(h.module, h.label).generate(SignatureAlgorithm.P256, "Ledger Root")
    ledger = LedgerService.open(url, schema=schema)
    ledger.create_network("EUR", SignatureAlgorithm.P256, "Ledger Root", ["Bank A"], T0, root_key)
    with pytest.raises(Conflict, match="token"):
        ledger.migrate(SignatureAlgorithm.ML_DSA_44, T0 + 10)
    assert ledger.params.algorithm is SignatureAlgorithm.P256
    with ledger.engine.connect() as conn:
        stored = [bytes(r[0]) for r in conn.execute(sa.select(s.authorities.c.key_der))]
    ledger.close()
    assert len(stored) == 2 and all(v.startswith(b"pkcs11:") for v in stored)
