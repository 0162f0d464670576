"""The schema's plan for a distributed PostgreSQL (Citus, docs/SCALING.md) holds for what the hot
paths really send: every statement on a distributed table names rows by that table's
distribution column (``payer`` for spends, the wallet for the wallet-keyed tables), by equality
or an IN list, so Citus routes it to the shards that hold those keys and nothing joins across
shards. The only statements not keyed are the ones docs/SCALING.md lists as fanning out (torn
payments looked up by payee; release-torn's selection of everything in suspense): this test
pins them to exactly those shapes, so a new unkeyed statement fails here. The statements are
recorded from the driver while the paths run (``hotpaths``), on both backends."""

from __future__ import annotations

import re

from hotpaths import Statement, run_hot_paths
from ledgerkit import World

#: distributed tables and their distribution columns (docs/SCALING.md)
DISTRIBUTED = {
    "spends": "payer",
    "conflicts": "payer",
    "wallets": "id",
    "vouchers": "wallet",
    "syncs": "wallet",
    "certificates": "wallet",
    "crl_deliveries": "wallet",
    "receipts": "wallet",
}
#: reference tables (replicated to every node) and coordinator-local ones: not checked
NOT_DISTRIBUTED = {
    "accounts",
    "authorities",
    "meta",
    "revocations",
    "journal",
    "postings",
    "anomalies",
    "idempotent_requests",
}
PARAM = r"(?:\?|%\(\w+\)s|'[^']*')"
TABLE_REF = re.compile(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+(\w+)", re.IGNORECASE)
INSERT = re.compile(r"^\s*INSERT INTO (\w+) \(([^)]*)\)", re.IGNORECASE)
# the documented fan-out lookups: torn payments (partial index ix_spends_payee_torn) by payee
TORN_BY_PAYEE = re.compile(r"\b(spends|conflicts)\.payee (?:=|IN) .*\.state IN \('released'")
SUSPENSE_SELECTION = re.compile(r"\b(spends|conflicts)\.state = \S+ AND \1\.time < ")


def unkeyed(sql: str) -> list[str]:
    """The distributed tables ``sql`` touches without naming rows by distribution column."""
    sql = " ".join(sql.split())
    insert = INSERT.match(sql)
    if insert:
        table, columns = insert.group(1), [c.strip() for c in insert.group(2).split(",")]
        ok = table not in DISTRIBUTED or DISTRIBUTED[table] in columns
        return [] if ok else [table]
    where = sql.split(" WHERE ", 1)[1] if " WHERE " in sql else ""
    missing = []
    for table in dict.fromkeys(TABLE_REF.findall(sql)):
        if table in NOT_DISTRIBUTED:
            continue
        assert table in DISTRIBUTED, f"{table}: not in docs/SCALING.md's plan"
        key = re.compile(rf"\b{table}\.{DISTRIBUTED[table]} (?:= {PARAM}|IN \()")
        if not key.search(where):
            missing.append(table)
    return missing


def _statements(world: World) -> list[Statement]:
    return [st for st in run_hot_paths(world) if st.path != "audit"]


def test_hot_statements_are_keyed_by_the_distribution_column(world: World) -> None:
    statements = _statements(world)
    touched = {t for st in statements for t in TABLE_REF.findall(st.sql)}
    assert {"spends", "conflicts", "wallets", "vouchers", "syncs", "receipts"} <= touched
    fan_out = []
    for st in statements:
        if not unkeyed(st.sql):
            continue
        sql = " ".join(st.sql.split())
        if TORN_BY_PAYEE.search(sql):
            fan_out.append("torn-by-payee")
        elif st.path == "release-torn" and SUSPENSE_SELECTION.search(sql):
            fan_out.append("suspense-selection")
        else:
            fan_out.append(f"{st.path}: {st.sql}")
    assert set(fan_out) == {"torn-by-payee", "suspense-selection"}


def test_the_check_sees_an_unkeyed_statement() -> None:
    """``unkeyed`` is not vacuous: a spend looked up by payee or by digest alone is caught, one
    by (payer, counter) or a payer list passes, on both drivers' placeholders."""
    assert unkeyed("SELECT spends.state FROM spends WHERE spends.payee = ?") == ["spends"]
    assert unkeyed("SELECT spends.state FROM spends WHERE spends.digest = %(d)s") == ["spends"]
    assert unkeyed("SELECT spends.state FROM spends") == ["spends"]
    assert unkeyed("UPDATE wallets SET status=? WHERE wallets.bank = ?") == ["wallets"]
    assert unkeyed("INSERT INTO receipts (payer, counter, seq) VALUES (?, ?, ?)") == ["receipts"]
    assert unkeyed("SELECT x FROM spends WHERE spends.payer = ? AND spends.counter = ?") == []
    assert unkeyed("SELECT x FROM spends WHERE spends.payer = %(payer_1)s") == []
    assert unkeyed("SELECT x FROM wallets WHERE wallets.id IN (?, ?)") == []
    assert unkeyed("INSERT INTO spends (payer, counter) SELECT * FROM unnest(%(p)b)") == []
    assert unkeyed("SELECT x FROM accounts WHERE accounts.kind = ?") == []
