"""A Python client for the settlement HTTP API, with the methods of ``LedgerService``.

Theory of operation: each method maps to one route of ``offcash.api.app`` and returns the same
dataclasses as the in-process facade, so a wallet or the CLI syncs through either. ``now`` is
sent as ``X-Offcash-Time``; a production server ignores it and uses its own clock. A problem
document comes back as the typed error its ``code`` names, with its members (a
``VerificationError`` with its ``Rejection``, a ``LimitExceeded`` with its limit and bound;
``RemoteError``/``LedgerError`` for codes this client does not know). A connection that fails
or times out is a ``ServiceUnavailable``, an answer that is not what the API promises a
``RemoteError``: no httpx exception escapes. ``Client`` implements
``offcash.wallet.Operations`` (checked by mypy) and is a context manager (``with Client(url)
as c:`` closes its connections).
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Self, TypeVar

import httpx

from offcash import errors
from offcash.api import wire
from offcash.domain.ids import WalletId
from offcash.ledger import errors as lerrors
from offcash.ledger.books import Audit
from offcash.ledger.service import Anomaly, Enrollment, RedeemResult, TrustMaterial
from offcash.ledger.sync import SyncResult
from offcash.se.log import Entry
from offcash.wallet.settlement import NetworkInfo, Operations

_SIMPLE: dict[str, type[errors.OffcashError]] = {
    cls.code: cls
    for mod in (errors, lerrors)
    for cls in vars(mod).values()
    if isinstance(cls, type)
    and issubclass(cls, errors.OffcashError)
    and cls
    not in (
        errors.DecodeError,
        errors.VerificationError,
        errors.LimitExceeded,
        errors.InsufficientFunds,
    )
}

P = ParamSpec("P")
R = TypeVar("R")


def _answer(method: Callable[Concatenate[Client, P], R]) -> Callable[Concatenate[Client, P], R]:
    """A client method whose answer, if it is not the shape the API promises (a missing
    member, a wrong type, bad base64), is a ``RemoteError`` rather than a ``KeyError``."""

    def call(client: Client, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(client, *args, **kwargs)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise errors.RemoteError(
                f"{method.__name__}: the settlement service answered something unexpected "
                f"({type(exc).__name__}: {exc})"
            ) from None

    functools.update_wrapper(call, method)  # name and docstring
    return call


class Client:
    """The settlement service over HTTP (``http``: an httpx client to use, e.g. a TestClient)."""

    def __init__(
        self,
        base_url: str = "http://offcash",
        token: str = "",
        http: httpx.Client | None = None,
        timeout: float = 60.0,
    ) -> None:
        self._http = http or httpx.Client(base_url=base_url, timeout=timeout)
        if token:
            self._http.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        """The client itself; its connections close when the ``with`` block ends."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Close the connection pool."""
        self.close()

    def _send(
        self, method: str, path: str, now: int | None = None, key: str | None = None, **kw: Any
    ) -> Any:
        headers = {"X-Offcash-Time": str(now)} if now is not None else {}
        if key is not None:
            headers["Idempotency-Key"] = key
        r = self._http.request(method, path, headers=headers, **kw)
        if r.status_code >= 400:
            raise _error(r)
        try:
            return r.json()
        except ValueError:
            raise errors.RemoteError(
                f"{method} {path}: HTTP {r.status_code} answer is not JSON"
            ) from None

    def _call(
        self, method: str, path: str, now: int | None = None, key: str | None = None, **kw: Any
    ) -> Any:
        try:
            return self._send(method, path, now, key, **kw)
        except httpx.HTTPError as exc:
            raise _unavailable(self._http, exc) from exc
        except httpx.InvalidURL as exc:
            raise errors.ServiceUnavailable(f"invalid settlement URL: {exc}") from None

    @_answer
    def network(self) -> NetworkInfo:
        """See ``LedgerService.network`` (no credential needed)."""
        return wire.parse_network(self._call("GET", "/v1/network"))

    @_answer
    def trust_material(self, wallet: WalletId | None, now: int) -> TrustMaterial:
        """See ``LedgerService.trust_material``."""
        params = {"wallet": str(wallet)} if wallet else {}
        return wire.parse_trust(self._call("GET", "/v1/trust", now, params=params))

    @_answer
    def sync(
        self, report: bytes, entries: Sequence[bytes | Entry], csr: bytes, now: int
    ) -> SyncResult:
        """See ``LedgerService.sync`` (the entries as ``sync_upload`` gives them, or encoded)."""
        body = {
            "report": wire.b64(report),
            "entries": [wire.b64(e.encode() if isinstance(e, Entry) else e) for e in entries],
            "csr": wire.b64(csr),
        }
        return wire.parse_sync_result(self._call("POST", "/v1/sync", now, json=body))

    @_answer
    def unload(self, request: bytes, now: int) -> int:
        """See ``LedgerService.unload``."""
        return int(
            self._call("POST", "/v1/unload", now, json={"request": wire.b64(request)})["amount"]
        )

    @_answer
    def redeem(self, terminal: WalletId, payments: Iterable[bytes], now: int) -> RedeemResult:
        """See ``LedgerService.redeem``."""
        body = {"payments": [wire.b64(p) for p in payments]}
        return wire.parse_redeem(
            self._call("POST", f"/v1/terminals/{terminal}/redeem", now, json=body)
        )

    def _call_once(
        self, method: str, path: str, now: int | None, key: str | None, **kw: Any
    ) -> Any:
        """A call that creates or moves something, sent with an ``Idempotency-Key`` (``key``, or
        a fresh random one) and sent again, with the same key, if the connection fails: the
        service applies it once and answers the retry as it answered the first."""
        key = key or secrets.token_urlsafe(16)
        try:
            return self._send(method, path, now, key, **kw)
        except httpx.TransportError:
            return self._call(method, path, now, key, **kw)
        except httpx.HTTPError as exc:
            raise _unavailable(self._http, exc) from exc

    @_answer
    def issue(self, bank: str, amount: int, now: int, idempotency_key: str | None = None) -> None:
        """See ``LedgerService.issue`` (applied once: see ``_call_once``)."""
        path = f"/v1/banks/{bank}/issue"
        self._call_once("POST", path, now, idempotency_key, json={"amount": amount})

    @_answer
    def open_account(self, bank: str, holder: str, idempotency_key: str | None = None) -> str:
        """See ``LedgerService.open_account`` (applied once: see ``_call_once``)."""
        body = {"bank": bank, "holder": holder}
        return str(
            self._call_once("POST", "/v1/accounts", None, idempotency_key, json=body)["account"]
        )

    @_answer
    def distribute(
        self, account: str, amount: int, now: int, idempotency_key: str | None = None
    ) -> None:
        """See ``LedgerService.distribute`` (applied once: see ``_call_once``)."""
        path = f"/v1/accounts/{account}/distribute"
        self._call_once("POST", path, now, idempotency_key, json={"amount": amount})

    @_answer
    def balance(self, account: str) -> int:
        """See ``LedgerService.balance``."""
        return int(self._call("GET", f"/v1/accounts/{account}")["balance"])

    @_answer
    def enroll(
        self, csr: bytes, account: str, now: int, idempotency_key: str | None = None
    ) -> Enrollment:
        """See ``LedgerService.enroll`` (bank default limits; applied once: see ``_call_once``)."""
        body = {"csr": wire.b64(csr), "account": account}
        return wire.parse_enrollment(
            self._call_once("POST", "/v1/wallets", now, idempotency_key, json=body)
        )

    @_answer
    def register_terminal(self, account: str, idempotency_key: str | None = None) -> WalletId:
        """See ``LedgerService.register_terminal`` (applied once: see ``_call_once``)."""
        body = {"account": account}
        answer = self._call_once("POST", "/v1/terminals", None, idempotency_key, json=body)
        return WalletId.parse(answer["wallet_id"])

    @_answer
    def fund(
        self, wallet: WalletId, amount: int, now: int, idempotency_key: str | None = None
    ) -> bytes:
        """See ``LedgerService.fund``: the account is debited once and a retry's answer is the
        same voucher (applied once: see ``_call_once``)."""
        path, body = f"/v1/wallets/{wallet}/fund", {"amount": amount}
        return wire.unb64(self._call_once("POST", path, now, idempotency_key, json=body)["voucher"])

    @_answer
    def report_lost(self, wallet: WalletId, now: int) -> None:
        """See ``LedgerService.report_lost``."""
        self._call("POST", f"/v1/wallets/{wallet}/lost", now)

    @_answer
    def refund_lost(self, wallet: WalletId, now: int) -> int:
        """See ``LedgerService.refund_lost``."""
        return int(self._call("POST", f"/v1/wallets/{wallet}/refund", now)["amount"])

    @_answer
    def release_torn(self, now: int) -> int:
        """See ``LedgerService.release_torn``."""
        return int(self._call("POST", "/v1/release-torn", now)["released"])

    @_answer
    def evidence(self, payer: WalletId) -> list[tuple[int, list[bytes]]]:
        """See ``LedgerService.evidence``."""
        return [
            (e["counter"], [wire.unb64(m) for m in e["messages"]])
            for e in self._call("GET", f"/v1/wallets/{payer}/evidence")
        ]

    @_answer
    def audit(self) -> Audit:
        """See ``LedgerService.audit``."""
        return wire.parse_audit(self._call("GET", "/v1/audit"))

    @_answer
    def anomalies(self, wallet: WalletId | None = None) -> list[Anomaly]:
        """See ``LedgerService.anomalies``."""
        params = {"wallet": str(wallet)} if wallet else {}
        return [wire.parse_anomaly(a) for a in self._call("GET", "/v1/anomalies", params=params)]


def _unavailable(http: httpx.Client, exc: httpx.HTTPError) -> errors.ServiceUnavailable:
    """The server could not be reached or did not answer, said without Python's ``[Errno N]``
    and, when nothing answered at all, with the likely cause."""
    why = re.sub(r"^\[Errno -?\d+\] ", "", str(exc)) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        why = f"cannot connect ({why[:1].lower()}{why[1:]}): is `offcash serve` running there?"
    return errors.ServiceUnavailable(f"settlement server {http.base_url}: {why}")


def _error(r: httpx.Response) -> errors.OffcashError:
    try:
        body = r.json()
        code, detail = str(body["code"]), str(body.get("detail", ""))
    except (ValueError, KeyError, TypeError):
        return errors.RemoteError(f"HTTP {r.status_code}: {r.text[:200]}")
    typed = _typed(code, detail, body)
    if typed is not None:
        return typed
    if code == errors.DecodeError.code:
        return errors.DecodeError("http", detail)
    cls = _SIMPLE.get(code)
    if cls is not None:
        return cls(detail)
    if r.status_code < 500 and r.status_code != 422:
        return lerrors.LedgerError(f"{code}: {detail}")
    return errors.RemoteError(f"{code}: {detail}")


def _typed(code: str, detail: str, body: dict[str, Any]) -> errors.OffcashError | None:
    """The error with members a problem document carries (``rejection``, ``limit``...)."""
    try:
        if code == errors.VerificationError.code:
            rejection = errors.Rejection[str(body["rejection"])]
            rest = detail.removeprefix(rejection.value).removeprefix(": ")
            return errors.VerificationError(rejection, "" if rest == rejection.value else rest)
        if code == errors.LimitExceeded.code:
            limit = errors.Limit[str(body["limit"])]
            return errors.LimitExceeded(limit, int(body["value"]), int(body["bound"]))
        if code == errors.InsufficientFunds.code:
            return errors.InsufficientFunds(int(body["balance"]), int(body["amount"]))
    except (KeyError, TypeError, ValueError):
        return None
    return None


if TYPE_CHECKING:
    from offcash.ledger.service import LedgerService

    def _both_implement_the_protocol(
        remote: Client, local: LedgerService
    ) -> tuple[Operations, Operations]:
        """Never called: mypy checks here that both are ``offcash.wallet.Operations``."""
        return remote, local
