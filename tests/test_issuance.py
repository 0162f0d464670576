"""The issuing side: root, banks, wallet certificates, vouchers, acknowledgements, CRLs."""

from __future__ import annotations

from cryptography import x509

from offcash.domain.ids import WalletId
from offcash.issuance import VOUCHER_VALIDITY, CentralBank
from offcash.protocol import messages as m
from offcash.verification import verify_ack, verify_voucher

from factories import make_signer, trust_of
from harness import T0, PilotNetwork

WID = WalletId(bytes(range(12)))


def test_central_bank_and_banks(network: PilotNetwork) -> None:
    cb = CentralBank.create("CB", network.params.algorithm, T0)
    bank = cb.certify_bank("Bank Z", T0)
    assert bank.name == "Bank Z"
    assert x509.load_der_x509_certificate(bank.certificate_der).issuer == cb.certificate.subject
    assert cb.certify_bank("Bank Y", T0).key != bank.key


def test_voucher(network: PilotNetwork) -> None:
    bank = network.banks[0]
    data = bank.voucher(WID, 700, "EUR", T0, voucher_id=b"\x05" * 16)
    v = verify_voucher(
        data, trust=trust_of(network), params=network.params, wallet=WID, bank=bank.name, now=T0
    )
    assert (v.amount, v.voucher_id, v.expires) == (700, b"\x05" * 16, T0 + VOUCHER_VALIDITY)
    assert m.parse_voucher(bank.voucher(WID, 1, "EUR", T0)).voucher_id != v.voucher_id


def test_acknowledge(network: PilotNetwork) -> None:
    bank = network.banks[0]
    s = make_signer(network)
    report = m.parse_report(
        s.report(sync_seq=3, counter=4, balance=5, entries=2, log_digest=b"\x01" * 32)
    )
    ack = verify_ack(
        bank.acknowledge(report, s.wallet_id, T0 + 1),
        trust=trust_of(network),
        params=network.params,
        wallet=s.wallet_id,
        bank=bank.name,
    )
    assert (ack.sync_seq, ack.entries, ack.log_digest, ack.time) == (3, 2, b"\x01" * 32, T0 + 1)


def test_crl(network: PilotNetwork) -> None:
    crl = x509.load_der_x509_crl(network.banks[0].crl([(5, T0), (6, T0)], 3, T0))
    assert sorted(r.serial_number for r in crl) == [5, 6]
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 3
    assert crl.is_signature_valid(network.banks[0].certificate.public_key())  # type: ignore[arg-type]
