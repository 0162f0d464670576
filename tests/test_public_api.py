"""The library's public names (issue 10, "Library users"): each package re-exports its main
names in ``__all__``, each of them imports, and every public class, method and property of
them has a docstring (inherited from the interface it implements counts)."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re

import pytest

PACKAGES = {
    "offcash.se": {"SecureElement", "SoftwareSecureElement", "SealedFile", "SyncUpload"},
    "offcash.protocol": {"PayerSide", "PayeeSide", "parse_payment", "parse_request"},
    "offcash.api": {"Client", "create_app", "serve"},
    "offcash.wallet": {"Wallet", "Settlement", "Operations", "NetworkInfo"},
    "offcash.ledger": {"LedgerService"},
}


def _public(package: str) -> list[tuple[str, object]]:
    module = importlib.import_module(package)
    return [(name, getattr(module, name)) for name in module.__all__]


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_main_names_are_re_exported(package: str) -> None:
    module = importlib.import_module(package)
    assert PACKAGES[package] <= set(module.__all__)
    assert (module.__doc__ or "").strip()


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_every_public_name_has_a_docstring(package: str) -> None:
    missing = []
    for name, obj in _public(package):
        doc = inspect.getdoc(obj) or ""
        if not doc.strip() or doc.startswith(f"{name}("):  # a dataclass's generated signature
            missing.append(name)
        if not inspect.isclass(obj):
            continue
        for attr, value in vars(obj).items():
            if attr.startswith("_") or not (callable(value) or isinstance(value, property)):
                continue
            if isinstance(value, type):
                continue
            if not (inspect.getdoc(getattr(obj, attr)) or "").strip():
                missing.append(f"{name}.{attr}")
    assert not missing, f"{package}: no docstring on {missing}"


#: Dataclasses whose every field must be documented (a ``#:`` comment above it, or ``name`` in
#: the class docstring). The protocol messages' fields are documented in docs/PROTOCOL.md.
DOCUMENTED_FIELDS = [
    "offcash.se.Status",
    "offcash.se.Received",
    "offcash.se.SyncUpload",
    "offcash.wallet.NetworkInfo",
    "offcash.wallet.ReceiveOnlyTerminal",
]


@pytest.mark.parametrize("path", DOCUMENTED_FIELDS)
def test_every_field_is_documented(path: str) -> None:
    package, name = path.rsplit(".", 1)
    cls = getattr(importlib.import_module(package), name)
    source, doc = inspect.getsource(cls), inspect.getdoc(cls) or ""
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if not re.search(rf"#:.*\n\s*{f.name}\s*:", source) and f"``{f.name}``" not in doc
    ]
    assert not missing, f"{path}: undocumented fields {missing}"
