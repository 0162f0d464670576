"""Typed field access for decoded CBOR maps, with the field path in every error.

Theory of operation: a message schema is a table from integer map keys to ``Field``s; ``read``
checks that a decoded map has exactly the known keys, that required ones are present and that
each value has its type, and returns the values by field name. Errors carry the dotted path
(``payment.payload.amount``) so a rejected input says exactly what was wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from offcash.errors import DecodeError

Check = Callable[[Any, str], Any]


@dataclass(frozen=True, slots=True)
class Field:
    """One map entry: its name, how to check and convert its value, whether it may be absent."""

    name: str
    check: Check
    required: bool = True


def read(value: Any, path: str, schema: Mapping[int, Field]) -> dict[str, Any]:
    """Check ``value`` against ``schema``; return the converted values keyed by field name."""
    if not isinstance(value, dict):
        raise DecodeError(path, "expected a map")
    out: dict[str, Any] = {}
    for key in value:
        if type(key) is not int or key not in schema:
            raise DecodeError(f"{path}.{key!r}", "unknown field")
    for key, fld in schema.items():
        if key in value:
            out[fld.name] = fld.check(value[key], f"{path}.{fld.name}")
        elif fld.required:
            raise DecodeError(f"{path}.{fld.name}", "missing field")
        else:
            out[fld.name] = None
    return out


def write(schema: Mapping[int, Field], values: Mapping[str, Any]) -> dict[int, Any]:
    """The CBOR map for ``values`` under ``schema``, leaving out optional fields that are None."""
    return {key: v for key, f in schema.items() if (v := values[f.name]) is not None}


def uint(max_value: int = 2**63 - 1) -> Check:
    """An unsigned integer up to ``max_value`` (bools are refused)."""

    def check(v: Any, path: str) -> int:
        if type(v) is not int:
            raise DecodeError(path, f"expected an unsigned integer, got {type(v).__name__}")
        if not 0 <= v <= max_value:
            raise DecodeError(path, f"integer {v} out of range 0..{max_value}")
        return v

    return check


def int_in(allowed: frozenset[int]) -> Check:
    """An integer from a fixed set."""

    def check(v: Any, path: str) -> int:
        if type(v) is not int or v not in allowed:
            raise DecodeError(path, f"expected one of {sorted(allowed)}, got {v!r}")
        return v

    return check


def bstr(min_len: int = 0, max_len: int = 65536) -> Check:
    """A byte string with a length in ``min_len..max_len``."""

    def check(v: Any, path: str) -> bytes:
        if type(v) is not bytes:
            raise DecodeError(path, f"expected a byte string, got {type(v).__name__}")
        if not min_len <= len(v) <= max_len:
            raise DecodeError(path, f"length {len(v)} out of range {min_len}..{max_len}")
        return v

    return check


def tstr(max_len: int = 256) -> Check:
    """A text string of at most ``max_len`` characters."""

    def check(v: Any, path: str) -> str:
        if type(v) is not str:
            raise DecodeError(path, f"expected a text string, got {type(v).__name__}")
        if len(v) > max_len:
            raise DecodeError(path, f"text longer than {max_len}")
        return v

    return check


def array_of(item: Check, max_items: int) -> Check:
    """An array of at most ``max_items`` values, each checked by ``item``."""

    def check(v: Any, path: str) -> list[Any]:
        if type(v) is not list:
            raise DecodeError(path, f"expected an array, got {type(v).__name__}")
        if len(v) > max_items:
            raise DecodeError(path, f"more than {max_items} items")
        return [item(x, f"{path}[{i}]") for i, x in enumerate(v)]

    return check


def converted(base: Check, convert: Callable[[Any], Any]) -> Check:
    """``base``, then ``convert``; a ``DecodeError`` from ``convert`` gets the field path."""

    def check(v: Any, path: str) -> Any:
        raw = base(v, path)
        try:
            return convert(raw)
        except DecodeError as exc:
            raise DecodeError(path, exc.reason) from None

    return check
