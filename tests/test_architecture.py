"""The dependency rule: the core imports no storage, network, CLI or web code.

The check parses each core module (``ast``, never importing it) and collects every module it can
reach by an import: ``import a.b``, ``from a import b`` (both ``a`` and ``a.b``: ``b`` may be a
submodule), relative imports resolved against the module's package, and ``importlib`` /
``__import__`` calls with a literal name. Any other dynamic import (a computed name) hides the
dependency from this check, so it is refused in the core outright. The last tests plant
violations in a temporary tree and show that the check fails on each.
"""

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
    "wallet",
    "verification.py",
    "issuance.py",
    "errors.py",
]
FORBIDDEN = {
    "offcash.ledger",
    "offcash.api",
    "offcash.cli",
    "offcash.transports",
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
    "urllib.request",
    "http",
}
#: ``offcash.wallet`` sits on top of the rest of the core: the other core packages never use it.
WALLET = "offcash.wallet"
#: Test tools shipped inside a core package: the SE conformance kit checks an SE against the real
#: ledger, so it may import ``offcash.ledger`` (nothing else forbidden); no core module imports it.
TOOLS = {"se/conformance": "offcash.se.conformance"}
TOOL_MAY_USE = {"offcash.ledger"}
#: A computed import: the check cannot see what it loads.
DYNAMIC = "<dynamic import>"


def _tool(path: Path, src: Path) -> bool:
    rel = path.relative_to(src).as_posix()
    return any(rel.startswith(t + "/") for t in TOOLS)


def core_modules(src: Path = SRC) -> list[Path]:
    """Every Python file of the core under ``src`` (the ``offcash`` package folder), without
    the test tools (``TOOLS``)."""
    out: list[Path] = []
    for part in CORE:
        path = src / part
        if path.is_dir():
            out += sorted(p for p in path.rglob("*.py") if not _tool(p, src))
        elif path.exists():
            out.append(path)
    return out


def tool_modules(src: Path = SRC) -> list[Path]:
    """Every Python file of the test tools under ``src``."""
    return sorted(p for t in TOOLS for p in (src / t).rglob("*.py"))


def imports(path: Path, src: Path = SRC) -> set[str]:
    """Every module ``path`` (a file under ``src``) may load, by name, and ``DYNAMIC`` for an
    import whose name is computed at run time."""
    module = path.relative_to(src.parent).with_suffix("").parts
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                package = module[: -node.level]  # ``__init__`` is the package's own file
                base = ".".join(package + ((node.module,) if node.module else ()))
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call):
            names.update(_dynamic(node))
        elif isinstance(node, ast.Name | ast.Attribute) and _name(node) in (
            "__import__",
            "importlib.import_module",
            "importlib.__import__",
        ):
            # a reference that is not a call with a literal name (``f = importlib.import_module``)
            names.add(DYNAMIC)
    return names


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return ""


def _dynamic(call: ast.Call) -> set[str]:
    if _name(call.func) not in ("__import__", "importlib.import_module", "import_module"):
        return set()
    first = call.args[0] if call.args else None
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return {first.value}
    return {DYNAMIC}


def forbidden(name: str, module: Path | None = None, src: Path = SRC) -> bool:
    """Whether the core module ``module`` may not import ``name``."""
    if name in (DYNAMIC, "importlib") or name.startswith("importlib."):
        return True
    banned = set(FORBIDDEN) | set(TOOLS.values())
    if module is None or module.relative_to(src).parts[0] != "wallet":
        banned.add(WALLET)
    if module is not None and _tool(module, src):
        banned -= TOOL_MAY_USE | set(TOOLS.values())
    return any(name == f or name.startswith(f + ".") for f in banned)


def violations(src: Path = SRC) -> dict[str, list[str]]:
    """Each core module of ``src`` that breaks the rule, with what it imports that it may not."""
    out: dict[str, list[str]] = {}
    for path in core_modules(src) + tool_modules(src):
        bad = sorted(n for n in imports(path, src) if forbidden(n, path, src))
        if bad:
            out[str(path.relative_to(src))] = bad
    return out


@pytest.mark.parametrize(
    "path", core_modules() + tool_modules(), ids=lambda p: str(p.relative_to(SRC))
)
def test_core_module_imports_nothing_outside_the_core(path: Path) -> None:
    bad = sorted(n for n in imports(path) if forbidden(n, path))
    assert not bad, f"{path.relative_to(SRC)} imports {bad}"


def test_the_check_sees_every_core_package() -> None:
    modules = {p.relative_to(SRC).parts[0] for p in core_modules()}
    assert modules == set(CORE)
    assert forbidden("offcash.ledger.sql") and not forbidden("offcash.ledgerx")


PLANTED = {
    "absolute.py": "import offcash.ledger.service\n",
    "from_package.py": "from offcash import ledger\n",
    "from_package_alias.py": "from offcash import api as remote\n",
    "nested.py": "def f():\n    from offcash.cli import main\n    return main\n",
    "type_only.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import httpx\n",
    "importlib_literal.py": "import importlib\nm = importlib.import_module('sqlalchemy')\n",
    "importlib_from.py": "from importlib import import_module\nm = import_module('offcash.cli')\n",
    "importlib_computed.py": "import importlib\nm = importlib.import_module('offcash.' + 'api')\n",
    "dunder_import.py": "m = __import__('socket')\n",
    "dunder_computed.py": "name = 'sock' + 'et'\nm = __import__(name)\n",
    "uses_wallet.py": "from offcash.wallet import Wallet\n",
    "uses_a_tool.py": "from offcash.se.conformance import run\n",
}
RELATIVE = {
    "relative_module.py": "from ..ledger import service\n",
    "relative_name.py": "from .. import transports\n",
}


def _tree(tmp_path: Path) -> Path:
    """A copy of the core's layout with one planted violation per file (``crypto/``: the
    absolute forms; ``protocol/``: relative imports; ``wallet/``: a clean module, plus one that
    imports the transports)."""
    src = tmp_path / "offcash"
    for part in CORE:
        target = src / part
        if part.endswith(".py"):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("from offcash.domain.ids import WalletId\n")
        else:
            target.mkdir(parents=True, exist_ok=True)
            (target / "__init__.py").write_text('"""clean"""\n')
    for name, text in PLANTED.items():
        (src / "crypto" / name).write_text(text)
    for name, text in RELATIVE.items():
        (src / "protocol" / name).write_text(text)
    (src / "wallet" / "facade.py").write_text("from offcash.wallet.settlement import Settlement\n")
    (src / "wallet" / "shop.py").write_text("from offcash.transports import qr\n")
    kit = src / "se" / "conformance"
    kit.mkdir(parents=True)
    (kit / "bench.py").write_text("from offcash.ledger import LedgerService\n")  # allowed
    (kit / "cli.py").write_text("from offcash.cli import main\n")
    return src


def test_the_check_fails_on_each_planted_violation(tmp_path: Path) -> None:
    found = violations(_tree(tmp_path))
    expected = {f"crypto/{n}" for n in PLANTED} | {f"protocol/{n}" for n in RELATIVE}
    assert set(found) == expected | {"wallet/shop.py", "se/conformance/cli.py"}
    assert found["crypto/uses_a_tool.py"] == [
        "offcash.se.conformance",
        "offcash.se.conformance.run",
    ]
    assert found["crypto/from_package.py"] == ["offcash.ledger"]
    assert found["protocol/relative_module.py"] == ["offcash.ledger", "offcash.ledger.service"]
    assert found["protocol/relative_name.py"] == ["offcash.transports"]
    assert found["crypto/importlib_computed.py"] == [DYNAMIC, "importlib"]
    assert found["crypto/dunder_computed.py"] == [DYNAMIC]
    assert "offcash.cli" in found["crypto/importlib_from.py"]


def test_the_real_core_has_no_violation() -> None:
    assert violations() == {}
