"""The checked-in test vectors (tests/vectors/*.json, made by scripts/make_vectors.py) are what
the code produces: byte for byte for Ed25519; for P-256 (randomized ECDSA) every encoding the
signer chooses is reproduced and the stored signatures verify."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import cbor2
import cwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from offcash.crypto import pki, trust
from offcash.crypto.algorithms import SignatureAlgorithm, verify
from offcash.crypto.trust import TrustStore
from offcash.domain.network import NetworkParams
from offcash.encoding import cbor, cose
from offcash.encoding.sealed import KemKey, KemSuite
from offcash.errors import Rejection, VerificationError
from offcash.protocol import messages as m
from offcash.se import log
from offcash.transports.qr import QrError, decode_frames, encode_frames
from offcash.transports.text import TextFormError, decode_text, encode_text
from offcash.verification import verify_payment, verify_receipt

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"
sys.path.insert(0, str(ROOT / "scripts"))
import make_vectors  # noqa: E402
import vector_cases  # noqa: E402


def _load(alg: SignatureAlgorithm) -> dict[str, Any]:
    return json.loads((VECTORS / f"payment-{alg.short}.json").read_text())


def _certs(vector: dict[str, Any]) -> dict[str, bytes]:
    return {k: bytes.fromhex(v) for k, v in vector["certificates"].items()}


def _context(vector: dict[str, Any]) -> tuple[TrustStore, NetworkParams]:
    certs = _certs(vector)
    net = vector["network"]
    params = NetworkParams(
        net["currency"],
        SignatureAlgorithm.from_name(vector["algorithm"]),
        net["max_payment_age"],
        net["clock_skew"],
    )
    return TrustStore.create(certs["root"], [certs["bank"]]), params


def test_ed25519_vector_is_reproduced_byte_for_byte() -> None:
    stored = (VECTORS / "payment-ed25519.json").read_text()
    assert make_vectors.dump(make_vectors.build(SignatureAlgorithm.ED25519)) == stored


def test_p256_vector_encodings_are_reproduced() -> None:
    vector = _load(SignatureAlgorithm.P256)
    fresh = make_vectors.build(SignatureAlgorithm.P256, _certs(vector))
    assert fresh["keys"] == vector["keys"]
    assert fresh["request"] == vector["request"]
    for part in ("fields", "protected", "payload", "to_be_signed"):
        assert fresh["payment"][part] == vector["payment"][part], part
    # the payment is named by what was signed, so its digest, and the receipt's payload that
    # names it, are reproduced although the ECDSA signature is random
    assert fresh["payment"]["digest"] == vector["payment"]["digest"]
    assert fresh["receipt"]["fields"] == vector["receipt"]["fields"]
    for part in ("protected", "payload", "to_be_signed"):
        assert fresh["receipt"][part] == vector["receipt"][part], part
    stored = m.parse_payment(bytes.fromhex(vector["payment"]["encoded"]))
    assert (
        m.sign_receipt(
            make_vectors.key_for(SignatureAlgorithm.P256, "payee"),
            _certs(vector)["payee"],
            payment=stored.digest,
            time=vector["receipt"]["fields"]["time"],
        )[:-64]
        == bytes.fromhex(vector["receipt"]["encoded"])[:-64]
    )
    stored_tbs = cose.sig_structure(
        bytes.fromhex(vector["receipt"]["protected"]), bytes.fromhex(vector["receipt"]["payload"])
    )
    assert stored_tbs.hex() == vector["receipt"]["to_be_signed"]
    # the certificates hold the fixed keys
    for name in ("root", "bank", "payer", "payee"):
        public = x509.load_der_x509_certificate(_certs(vector)[name]).public_key()
        key = make_vectors.key_for(SignatureAlgorithm.P256, name)
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        assert public.public_bytes(
            serialization.Encoding.DER, spki
        ) == key.public_key().public_bytes(serialization.Encoding.DER, spki)


@pytest.mark.parametrize("alg", list(SignatureAlgorithm), ids=lambda a: a.short)
def test_vector_verifies_and_re_encodes(alg: SignatureAlgorithm) -> None:
    vector = _load(alg)
    trust, params = _context(vector)
    data = bytes.fromhex(vector["payment"]["encoded"])
    request = m.parse_request(bytes.fromhex(vector["request"]["encoded"]))
    assert request.encode().hex() == vector["request"]["encoded"]
    verified = verify_payment(
        data,
        trust=trust,
        params=params,
        now=vector["payment"]["verify_at"],
        payee=request.payee,
        request=request,
    )
    p = verified.payment
    assert str(verified.payer) == vector["payer"] and str(p.payee) == vector["payee"]
    assert (p.amount, p.counter, p.nonce.hex()) == (  # type: ignore[union-attr]
        vector["payment"]["fields"]["amount"],
        1,
        vector["payment"]["fields"]["nonce"],
    )
    env = p.envelope
    assert env.to_be_signed().hex() == vector["payment"]["to_be_signed"]
    assert env.signature.hex() == vector["payment"]["signature"]
    assert m.digest(data).hex() == vector["payment"]["digest"]
    assert (
        hashlib.sha256(bytes.fromhex(vector["payment"]["to_be_signed"])).hexdigest()
        == (vector["payment"]["digest"])
    )
    if alg is SignatureAlgorithm.P256:  # canonical: s <= n/2
        assert int(vector["payment"]["signature"][64:], 16) <= make_vectors.P256_ORDER // 2
    # decoding and re-encoding reproduces every byte
    assert cbor.encode(cbor.decode(data)) == data
    assert cbor.encode(cbor.decode(env.protected)) == env.protected
    assert cbor.encode(cbor.decode(env.payload)) == env.payload
    receipt = bytes.fromhex(vector["receipt"]["encoded"])
    assert (
        verify_receipt(receipt, trust=trust, params=params, payment=p).time
        == vector["receipt"]["fields"]["time"]
    )
    # and an independent implementation agrees: python-cwt, or dilithium-py for ML-DSA
    public = x509.load_der_x509_certificate(env.certificate_der).public_key()
    assert verify(public, env.signature, env.to_be_signed())  # type: ignore[arg-type]
    if alg.post_quantum:
        from dilithium_py.ml_dsa import ML_DSA_44, ML_DSA_65

        scheme = ML_DSA_44 if alg is SignatureAlgorithm.ML_DSA_44 else ML_DSA_65
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert scheme.verify(raw, bytes.fromhex(vector["payment"]["to_be_signed"]), env.signature)
        return
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key = cwt.COSEKey.from_pem(pem, alg="ES256" if alg is SignatureAlgorithm.P256 else "EdDSA")
    assert cwt.COSE.new().decode(data, key) == env.payload


@pytest.mark.parametrize("alg", list(SignatureAlgorithm), ids=lambda a: a.short)
def test_negative_vectors(alg: SignatureAlgorithm) -> None:
    vector = _load(alg)
    trust, params = _context(vector)
    payee = m.parse_request(bytes.fromhex(vector["request"]["encoded"])).payee
    assert {c["name"] for c in vector["negative"]} >= {"tampered_amount", "flipped_signature_bit"}
    for case in vector["negative"]:
        with pytest.raises(VerificationError) as info:
            verify_payment(
                bytes.fromhex(case["encoded"]),
                trust=trust,
                params=params,
                now=case["verify_at"],
                payee=payee,
            )
        assert info.value.rejection is Rejection[case["rejection"]], case["name"]


def test_vector_files_are_the_only_ones() -> None:
    names = sorted(p.name for p in VECTORS.glob("*.json"))
    assert names == sorted(
        [f"payment-{a.short}.json" for a in SignatureAlgorithm]
        + [f"cases-{a.short}.json" for a in SignatureAlgorithm]
        + ["migration.json", "sealed.json", "transports.json"]
    )


# --- the v1 conformance cases (docs/PROTOCOL.md section 10) ------------------------------------


def _cases(alg: SignatureAlgorithm) -> dict[str, Any]:
    return json.loads((VECTORS / f"cases-{alg.short}.json").read_text())


CASE_ALGS = pytest.mark.parametrize("alg", list(SignatureAlgorithm), ids=lambda a: a.short)


@CASE_ALGS
def test_every_case_gives_its_expected_outcome(alg: SignatureAlgorithm) -> None:
    vector = _cases(alg)
    wrong = [
        (c["name"], c["expect"], got)
        for c in vector["cases"]
        if (got := vector_cases.check_case(c, vector)) != c["expect"]
    ]
    assert not wrong


@CASE_ALGS
def test_payee_memory_sequences(alg: SignatureAlgorithm) -> None:
    vector = _cases(alg)
    for steps in vector["payee_memory"].values():
        expected = [s["expect"] for s in steps if s["op"] == "receive"]
        assert vector_cases.run_sequence(steps, vector) == expected


@CASE_ALGS
def test_cases_cover_every_rule_and_rejection(alg: SignatureAlgorithm) -> None:
    vector = _cases(alg)
    cases = vector["cases"]
    rejections = {c["expect"].get("rejection") for c in cases}
    memory = [
        s["expect"] for steps in vector["payee_memory"].values() for s in steps if "expect" in s
    ]
    rejections |= {e.get("rejection") for e in memory}
    # REPLAYED is the SE's own refusal (a voucher applied twice, a stale acknowledgement)
    assert rejections - {None} == {r.name for r in Rejection} - {"REPLAYED"} - (
        set() if alg is SignatureAlgorithm.P256 else {"NON_CANONICAL_SIGNATURE"}
    )
    assert {c["rule"] for c in cases} >= {str(n) for n in range(1, 14)}
    functions = {c["function"] for c in cases}
    assert functions == {
        "verify_payment", "verify_receipt", "verify_voucher", "verify_ack", "verify_unload",
        "verify_report", "parse_request", "trust_store",
    }  # fmt: skip
    for c in cases:  # each case is self-contained: the exact verifier inputs
        assert c["trust"]["root"] in vector["certificates"]
        assert set(c["network"]) == {"currency", "algorithm", "max_payment_age", "clock_skew"}


def test_ed25519_cases_are_reproduced_byte_for_byte() -> None:
    stored = (VECTORS / "cases-ed25519.json").read_text()
    alg = SignatureAlgorithm.ED25519
    fresh = vector_cases.build_cases(alg, make_vectors.key_for, make_vectors.certificates(alg))
    assert make_vectors.dump(fresh) == stored


_PARSERS = {
    "payment": m.parse_payment,
    "receipt": m.parse_receipt,
    "voucher": m.parse_voucher,
    "unload": m.parse_unload,
    "report": m.parse_report,
    "ack": m.parse_ack,
}


def _independent_signature_check(alg: SignatureAlgorithm, data: bytes) -> None:
    """The signature verifies with python-cwt, or dilithium-py for ML-DSA."""
    env = cose.decode_sign1(data)
    public = x509.load_der_x509_certificate(env.certificate_der).public_key()
    if alg.post_quantum:
        from dilithium_py.ml_dsa import ML_DSA_44, ML_DSA_65

        scheme = ML_DSA_44 if alg is SignatureAlgorithm.ML_DSA_44 else ML_DSA_65
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert scheme.verify(raw, env.to_be_signed(), env.signature)
        return
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key = cwt.COSEKey.from_pem(pem, alg="ES256" if alg is SignatureAlgorithm.P256 else "EdDSA")
    assert cwt.COSE.new().decode(data, key) == env.payload


@CASE_ALGS
def test_messages_of_every_kind_decode_to_their_fields(alg: SignatureAlgorithm) -> None:
    vector = _cases(alg)
    msgs = vector["messages"]
    raw = {n: bytes.fromhex(v["encoded"]) for n, v in msgs.items() if "encoded" in v}
    for name, data in raw.items():
        fields = msgs[name]["fields"]
        if name.startswith("request"):
            req = m.parse_request(data)
            assert hashlib.sha256(data).hexdigest() == msgs[name]["digest"]
            assert str(req.payee) == fields["payee"] and req.amount == fields["amount"]
            assert req.encode() == data
            continue
        env = cose.decode_sign1(data)
        # the digest names the signed content: SHA-256 of the Sig_structure
        assert hashlib.sha256(env.to_be_signed()).hexdigest() == msgs[name]["digest"]
        kind = name.removesuffix("_one_way")
        assert env.kind is vector_cases.SIGNED_KINDS[kind]
        parsed = _PARSERS[kind](data)
        for field, value in fields.items():
            got = getattr(parsed, field)
            assert (got.hex() if isinstance(got, bytes) else str(got)) == str(value), field
        _independent_signature_check(alg, data)
    log_entries = msgs["log"]["entries"]
    head = bytes.fromhex(msgs["log"]["base"])
    for entry in log_entries:  # head_i = SHA-256(head_{i-1} || entry_i), computed here
        f = entry["fields"]
        message = raw[entry["message"]]
        encoded = bytes.fromhex(entry["encoded_prefix"]) + message
        assert cbor2.loads(encoded) == [f["type"], f["time"], f["amount"], message]
        assert log.Entry(log.EntryType(f["type"]), f["time"], f["amount"], message).encode() == (
            encoded
        )
        head = hashlib.sha256(head + encoded).digest()
        assert head.hex() == entry["head"]
    assert (
        msgs["report"]["fields"]["log_digest"] == head.hex() == msgs["ack"]["fields"]["log_digest"]
    )
    assert msgs["report"]["fields"]["entries"] == len(log_entries)


@CASE_ALGS
def test_crls_are_the_banks_and_list_their_serials(alg: SignatureAlgorithm) -> None:
    vector = _cases(alg)
    bank = x509.load_der_x509_certificate(bytes.fromhex(vector["certificates"]["bank"]))
    payer = x509.load_der_x509_certificate(bytes.fromhex(vector["certificates"]["payer"]))
    for name, hexed in vector["crls"].items():
        crl = x509.load_der_x509_crl(bytes.fromhex(hexed))
        assert crl.issuer == bank.subject
        revoked = {r.serial_number for r in crl}
        assert (payer.serial_number in revoked) == (name != "crl_revoking_other")
        assert crl.is_signature_valid(bank.public_key()) == (name != "crl_by_rogue_key")  # type: ignore[arg-type]


# --- transports and sealed payments ------------------------------------------------------------


def test_text_forms() -> None:
    vector = json.loads((VECTORS / "transports.json").read_text())
    message = bytes.fromhex(vector["message"])
    forms = vector["text"]
    assert encode_text(message, "base45") == forms["base45"]
    assert encode_text(message, "base64url") == forms["base64url"]
    body = forms["base64url"].removeprefix("OC1B64:")  # an independent base64url reading
    assert base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)) == message
    for case in forms["cases"]:
        expect = case["expect"]
        if expect["outcome"] == "accept":
            assert decode_text(case["text"]) == message, case["name"]
        else:
            with pytest.raises(TextFormError):
                decode_text(case["text"])


def test_qr_frames() -> None:
    vector = json.loads((VECTORS / "transports.json").read_text())
    qr_v = vector["qr"]
    message = bytes.fromhex(qr_v["message"])
    for layout in ("default_budget", "budget_100"):
        frames = [bytes.fromhex(f) for f in qr_v[layout]["frames"]]
        assert encode_frames(message, budget=qr_v[layout]["budget"]) == frames
        # independent reading of the layout: header, then the chunks in order
        digest = hashlib.sha256(message).digest()[:8]
        for i, frame in enumerate(frames, 1):
            assert frame[:13] == b"OC\x01" + bytes([i, len(frames)]) + digest
        assert b"".join(f[13:] for f in frames) == message
    sizes = [len(f) - 13 for f in (bytes.fromhex(x) for x in qr_v["budget_100"]["frames"])]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] - sizes[-1] <= 1
    big = qr_v["ml_dsa_44_payment_layout"]
    large = bytes.fromhex(_load(SignatureAlgorithm.ML_DSA_44)["payment"]["encoded"])
    assert len(large) == big["message_size"]
    frames = encode_frames(large, budget=big["budget"])
    assert [f[:13].hex() for f in frames] == big["headers"]
    assert [len(f) - 13 for f in frames] == big["chunk_sizes"]
    for case in qr_v["cases"]:
        given = [bytes.fromhex(f) for f in case["frames"]]
        if case["expect"]["outcome"] == "accept":
            assert decode_frames(given) == message, case["name"]
            continue
        with pytest.raises(QrError) as info:
            decode_frames(given)
        assert type(info.value).__name__ == case["expect"]["error"], case["name"]


def test_sealed_payments_open() -> None:
    vector = json.loads((VECTORS / "sealed.json").read_text())
    plaintext = bytes.fromhex(vector["plaintext"])
    assert {s.short for s in KemSuite} == set(vector["suites"])
    for short, suite_v in vector["suites"].items():
        suite = next(s for s in KemSuite if s.short == short)
        key = KemKey(suite, bytes.fromhex(suite_v["recipient_secret"]))
        assert key.public().hex() == suite_v["recipient_public"]
        for case in suite_v["cases"]:
            data = bytes.fromhex(case["sealed"])
            got = vector_cases.sealed_outcome(key, data, plaintext)
            assert got == case["expect"], (short, case["name"])
            if case["name"] == "opens":  # the layout: 16([protected {1: alg}, {-4: ek}, ct])
                item = cbor2.loads(data)
                assert item.tag == 16 and cbor2.loads(item.value[0]) == {1: suite_v["cose_alg"]}
                assert len(item.value[1][-4]) == suite.ek_size
                assert len(item.value[2]) == suite_v["padded_size"] + 16
                assert suite_v["padded_size"] == {"hpke-3": 1_938, "mlkem768-x25519": 1_846}[short]
            if suite is KemSuite.X25519 and case["expect"]["outcome"] == "accept":
                padded = _pyhpke_open(key.secret, cbor2.loads(data).value)
                assert len(padded) == suite_v["padded_size"]
                assert _unpad(padded) == plaintext


def _unpad(padded: bytes) -> bytes:
    """The payment in a padded plaintext, read here (docs/PROTOCOL.md section 9): the
    deterministic CBOR ``[payment: bstr, padding: bstr of zeros]``."""
    payment, padding = cbor2.loads(padded)
    assert type(payment) is bytes and padding == bytes(len(padding))
    assert cbor2.dumps([payment, padding], canonical=True) == padded
    return bytes(payment)


def test_sealed_payee_csrs_and_certificates_bind_the_recipient_key() -> None:
    """Each suite's payee CSR carries the recipient's public key (EncryptionKey, a DER OCTET
    STRING) and its certificate binds the key's SHA-256 (EncryptionKeyDigest, an OCTET STRING
    of 32 bytes), both read by ``cryptography`` and ``hashlib``, not by offcash's parser; the
    certificate verifies under the Ed25519 vector root and bank, whose trust store reads the
    same digest; a payer seals for the directory keys whose SHA-256 is that digest only."""
    vector = json.loads((VECTORS / "sealed.json").read_text())
    ed = _load(SignatureAlgorithm.ED25519)
    trust = TrustStore.create(
        bytes.fromhex(ed["certificates"]["root"]), [bytes.fromhex(ed["certificates"]["bank"])]
    )
    key_oid = x509.ObjectIdentifier(vector["encryption_key_oid"])
    digest_oid = x509.ObjectIdentifier(vector["encryption_key_digest_oid"])
    for suite_v in vector["suites"].values():
        public = bytes.fromhex(suite_v["recipient_public"])
        digest = hashlib.sha256(public).digest()
        assert suite_v["recipient_public_digest"] == digest.hex()
        csr = x509.load_der_x509_csr(bytes.fromhex(suite_v["payee_csr"]))
        assert csr.is_signature_valid
        asked = csr.extensions.get_extension_for_oid(key_oid)
        head = (
            bytes([0x04, len(public)])
            if len(public) < 128
            else b"\x04\x82" + len(public).to_bytes(2, "big")
        )
        assert not asked.critical and asked.value.value == head + public  # type: ignore[attr-defined]
        der = bytes.fromhex(suite_v["payee_certificate"])
        parsed = x509.load_der_x509_certificate(der)
        ext = parsed.extensions.get_extension_for_oid(digest_oid)
        assert not ext.critical
        assert ext.value.value == b"\x04\x20" + digest  # type: ignore[attr-defined]
        assert public not in der
        assert parsed.public_key() == csr.public_key()
        cert = trust.wallet_certificate(der, vector_cases.TIME)
        assert str(cert.wallet_id) == ed["request"]["fields"]["payee"]
        assert cert.encryption_key_digest == digest
        outcomes = {c["expect"]["outcome"] for c in suite_v["directory_keys"]}
        assert outcomes == {"accept", "refuse"}
        for case in suite_v["directory_keys"]:
            key = bytes.fromhex(case["key"])
            accepted = hashlib.sha256(key).digest() == digest
            assert accepted == (case["expect"]["outcome"] == "accept"), case["name"]
            assert cert.certifies_encryption_key(key) == accepted, case["name"]


def test_migration_cases_give_their_expected_outcomes() -> None:
    vector = json.loads((VECTORS / "migration.json").read_text())
    assert vector["network"]["legacy"] == "ed25519"
    assert vector["network"]["algorithm"] == "ml-dsa-44"
    got = {c["name"]: vector_cases.check_case(c, vector) for c in vector["cases"]}
    assert got == {c["name"]: c["expect"] for c in vector["cases"]}
    assert {c["expect"]["outcome"] for c in vector["cases"]} == {"accept", "rejection"}


def test_migration_root_links_and_key_rollover() -> None:
    """NewWithOld verifies under the old root and certifies the new root's name and key (read
    with ``cryptography``); the re-key CSR's handover verifies under the old certificate's key
    over the documented context and SPKI, and one handed over by another key does not."""
    vector = json.loads((VECTORS / "migration.json").read_text())
    cert = {
        k: x509.load_der_x509_certificate(bytes.fromhex(v))
        for k, v in vector["certificates"].items()
    }
    link, root, old_root = cert["new_with_old"], cert["root"], cert["old_root"]
    link.verify_directly_issued_by(old_root)
    assert link.subject == root.subject and link.public_key() == root.public_key()
    cert["old_with_new"].verify_directly_issued_by(root)
    assert cert["old_with_new"].public_key() == old_root.public_key()
    assert trust.roll_over(old_root, pki.der(root), pki.der(link)) == pki.der(root)
    r = vector["key_rollover"]
    oid = x509.ObjectIdentifier(r["extension_oid"])
    previous = cert[r["previous_certificate"]].public_key()
    for name, valid in (("csr", True), ("csr_handed_over_by_another_key", False)):
        csr = x509.load_der_x509_csr(bytes.fromhex(r[name]))
        handover = csr.extensions.get_extension_for_oid(oid).value.value  # type: ignore[attr-defined]
        assert (
            csr.public_key()
            .public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .hex()
            == r["new_spki"]
        )
        signed = bytes.fromhex(r["context"]) + bytes.fromhex(r["new_spki"])
        assert verify(previous, handover, signed) is valid  # type: ignore[arg-type]
        assert pki.csr_rollover(bytes.fromhex(r[name]), previous) is valid  # type: ignore[arg-type]


def _pyhpke_open(secret: bytes, parts: list[Any]) -> bytes:
    """An independent HPKE-3 (pyhpke) opens a sealed vector, with the RFC 9052 Enc_structure
    as HPKE info (docs/PROTOCOL.md section 9, the deviation from the draft)."""
    from cryptography.hazmat.primitives.asymmetric import x25519
    from pyhpke import AEADId, CipherSuite, KDFId, KEMId, KEMKey

    protected, unprotected, ciphertext = parts
    suite = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES128_GCM)
    private = KEMKey.from_pyca_cryptography_key(x25519.X25519PrivateKey.from_private_bytes(secret))
    info = cbor2.dumps(["Encrypt0", protected, b""])
    opened: bytes = suite.create_recipient_context(unprotected[-4], private, info=info).open(
        ciphertext
    )
    return opened
