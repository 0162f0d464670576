"""The install stays reproducible: README, ``.ci/run``, ``constraints.txt`` and ``pyproject.toml``
agree with each other.

CI must run exactly what the README tells a new user to run (its install command and its test
commands); the install command uses the constraints file; the constraints file pins every
dependency ``pyproject.toml`` names (in every extra), and says how to refresh it with the same
command the README documents; ``pyproject.toml`` itself keeps ranges for library users.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _sh_blocks() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    return [b.strip().splitlines() for b in re.findall(r"```sh\n(.*?)```", text, re.S)]


def _install_command() -> str:
    return next(line for line in _sh_blocks()[0] if line.startswith("pip install"))


def _ci_commands() -> list[str]:
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    return [x.strip() for x in lines if x.strip() and not x.lstrip().startswith("#")]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if m:
            pins[canonicalize_name(m[1])] = m[2]
    return pins


def test_ci_runs_exactly_the_readme_install_and_test_commands() -> None:
    tests_block = next(b for b in _sh_blocks() if any("pytest" in x for x in b))
    wanted = [_install_command(), *tests_block]
    ci = _ci_commands()
    positions = [ci.index(cmd) for cmd in wanted]  # ValueError names a missing command
    assert positions == sorted(positions), "CI runs the README's commands in another order"


def test_install_command_uses_the_constraints_file() -> None:
    assert "-c constraints.txt" in _install_command()
    assert (ROOT / "constraints.txt").is_file()


def test_refresh_command_documented_in_readme_and_lock_header() -> None:
    (refresh,) = [x for b in _sh_blocks() for x in b if x.startswith("uv pip compile")]
    header = (ROOT / "constraints.txt").read_text().splitlines()[:3]
    assert any(line.lstrip("# ").strip() == refresh for line in header), header
    assert "-o constraints.txt" in refresh and "--extra dev" in refresh


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra]
    return reqs


def test_every_dependency_is_pinned_and_pin_fits_its_range() -> None:
    pins = _pins()
    for req in _declared():
        name = canonicalize_name(req.name)
        assert name in pins, f"{name} is not in constraints.txt: refresh it (see README)"
        assert req.specifier.contains(pins[name], prereleases=True), (req, pins[name])
    assert "psycopg-binary" in pins  # extras' own dependencies are pinned too


def test_pyproject_keeps_ranges() -> None:
    for req in _declared():
        assert not any(s.operator in ("==", "===") for s in req.specifier), req
