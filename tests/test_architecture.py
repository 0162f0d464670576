"""The dependency rule: the core imports no storage, network, CLI or web code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "offcash"
CORE = [
    "domain",
    "encoding",
    "crypto",
    "protocol",
    "se",
    "verification.py",
    "issuance.py",
    "errors.py",
]
FORBIDDEN = {
    "offcash.ledger",
    "offcash.api",
    "offcash.cli",
    "offcash.transports",
    "offcash.wallet",
    "offcash.simulator",
    "matplotlib",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "fastapi",
    "uvicorn",
    "starlette",
    "httpx",
    "requests",
    "typer",
    "rich",
    "click",
    "segno",
    "zxingcpp",
    "socket",
    "sqlite3",
}


def _core_modules() -> list[Path]:
    out: list[Path] = []
    for part in CORE:
        path = SRC / part
        out += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return out


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                package = path.relative_to(SRC.parent).with_suffix("").parts[: -node.level]
                base = ".".join(package)
                names.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                names.add(node.module)
    return names


def _forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


@pytest.mark.parametrize("path", _core_modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_core_module_imports_nothing_outside_the_core(path: Path) -> None:
    bad = sorted(n for n in _imports(path) if _forbidden(n))
    assert not bad, f"{path.relative_to(SRC)} imports {bad}"


def test_the_check_sees_every_core_package() -> None:
    modules = {p.relative_to(SRC).parts[0] for p in _core_modules()}
    assert modules == set(CORE)
    assert _forbidden("offcash.ledger.sql") and not _forbidden("offcash.ledgerx")
