"""Where the CLI keeps a network on disk: its config, wallet registry and secure-element files.

Theory of operation: a network is a folder (``--network DIR`` or ``OFFCASH_NETWORK``) holding

* ``offcash.json``: the network config (currency, signature algorithm, ledger database URL,
  bank names, the central bank's root certificate, the lost-device claim window and the
  operator token of the HTTP API), written once by ``offcash network init``;
* ``wallets.json``: the registry mapping a wallet's *name* to its wallet id, bank and owner
  account, so people see names rather than key fingerprints;
* ``wallets/NAME.se``: one PIN-sealed software secure element per software wallet;
* ``wallets/NAME.card``: the memory of a card wallet's card (``offcash.se.card``), run by a
  card process in a vpcd reader slot (``cards/NAME.json``; ``offcash.card.process``), unless
  the wallet's card sits in a physical reader named in the registry.

Each wallet's secure element is opened in one place, ``Network.open_se`` / ``Network.se``, which
picks the kind the registry records for it (``software``, the default, or ``card``: the same
operations as APDUs through PC/SC, the PIN presented to the card's VERIFY once the card has
proved it holds the key of the wallet's certificate in the registry: INTERNAL AUTHENTICATE).

Offline commands read only these files, never the ledger database. The operator token guards
the operator calls of ``offcash serve`` (accounts, funding, lost devices, audit); ``OFFCASH_TOKEN``
overrides it, on the server and on the client side of ``--server``. The PIN comes from
``--pin-file``, else ``OFFCASH_PIN`` (one PIN for every wallet the command opens), else, on a
terminal, a hidden prompt, else ``DEV_PIN``: a development PIN that protects nothing and exists
so a pilot on one laptop can run without typing PINs. The files are read strictly: a
hand-edited file with a wrong type is refused with the file and field named, never half-used.
A database URL is shown only through ``redact_url`` (its password never reaches any output).

Several commands may run at once on one folder (two terminals, a shell pipeline): every change
of the registries (``Network.update``) and every secure-element operation (``Network.se``)
holds an OS file lock (``offcash.se.filelock``) around its whole read-modify-write, and files
are replaced atomically.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from offcash.card import process as card_process
from offcash.card import wallets as card_wallets
from offcash.cli.amount import Amount
from offcash.crypto import challenge
from offcash.crypto.algorithms import SignatureAlgorithm
from offcash.domain.ids import WalletId
from offcash.domain.money import Currency, Money
from offcash.domain.network import NetworkParams
from offcash.errors import (
    CardNotAuthenticated,
    DecodeError,
    MoneyError,
    OffcashError,
    PinBlocked,
    SecureElementError,
    WrongPin,
)
from offcash.se.card.host import CardSecureElement
from offcash.se.filelock import exclusive, lock_path
from offcash.se.software import SoftwareSecureElement
from offcash.se.storage import SealedFile, atomic_write

CONFIG_FILE = "offcash.json"
REGISTRY_FILE = "wallets.json"
ACCOUNTS_FILE = "accounts.json"
WALLETS_DIR = "wallets"
LEDGER_FILE = "ledger.sqlite"
#: Development PIN used when neither ``--pin-file`` nor ``OFFCASH_PIN`` is given. NOT SECURE.
DEV_PIN = "0000"
#: The ledger's default claim window (``offcash.ledger.service.DEFAULT_CLAIM_WINDOW``; a test
#: checks they agree, so offline commands need not import the ledger).
DEFAULT_CLAIM_WINDOW = 30 * 24 * 3600
#: The secure element kinds a wallet can have (``wallet create --se``).
SE_KINDS = ("software", "card")
#: A wallet's secure element, of either kind.
WalletSE = SoftwareSecureElement | CardSecureElement
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class CliRefusal(OffcashError):
    """The CLI refuses: no network here, an unknown wallet, a file that already exists..."""

    code = "refused"


class UsageProblem(CliRefusal):
    """A usage error found past click's parsing (an invalid name, amount or URL): exit 2."""

    code = "usage"
    exit_code = 2


def now() -> int:
    """The current time in whole seconds (``OFFCASH_NOW`` pins it, for reproducible runs)."""
    pinned = os.environ.get("OFFCASH_NOW")
    return int(pinned) if pinned and pinned.isdigit() else int(time.time())


def check_name(name: str, what: str = "wallet") -> str:
    """``name`` if it is a valid wallet or account name (it becomes a file name)."""
    if not _NAME.match(name):
        raise UsageProblem(f"invalid {what} name {name!r}: use letters, digits, '.', '_' or '-'")
    return name


def read_pin(
    pin_file: Path | None, wallet: str | None = None, *, new: bool = False, what: str = "PIN"
) -> str:
    """The PIN of ``wallet``: from ``pin_file`` (first line), else ``OFFCASH_PIN`` (which
    applies to every wallet), else a hidden prompt when standard input is a terminal (Enter
    keeps the development PIN; ``new`` asks twice), else the development PIN. ``what`` names
    the secret in messages about the file (``PUK`` for ``card unblock``)."""
    if pin_file is not None:
        try:
            lines = pin_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:  # "no such file", not "[Errno 2] No such file or directory: ..."
            why = (exc.strerror or str(exc)).lower()
            raise CliRefusal(f"cannot read {what} file {pin_file}: {why}") from None
        except UnicodeDecodeError:
            raise CliRefusal(f"cannot read {what} file {pin_file}: not UTF-8 text") from None
        pin = lines[0].strip() if lines else ""
        if not pin:
            raise CliRefusal(f"{what} file {pin_file} is empty")
        return pin
    env = os.environ.get("OFFCASH_PIN")
    if env:
        return env
    if wallet is not None and sys.stdin.isatty():
        return _prompt_pin(wallet, new=new)
    return DEV_PIN


def read_new_pin(new_pin_file: Path | None, wallet: str) -> str:
    """A new PIN for ``wallet``: from ``new_pin_file`` (first line), else asked twice on a
    terminal; with neither, a usage error (a new PIN never defaults to the development one)."""
    if new_pin_file is not None:
        return read_pin(new_pin_file)
    if not sys.stdin.isatty():
        raise UsageProblem("give the new PIN with --new-pin-file FILE (no terminal to ask on)")
    import typer  # only on a terminal

    pin: str = typer.prompt(
        f"New PIN for wallet {wallet}", hide_input=True, confirmation_prompt=True, err=True
    )
    return pin.strip()


def _prompt_pin(wallet: str, *, new: bool) -> str:
    import typer  # only on a terminal

    what = f"New PIN for wallet {wallet}" if new else f"PIN for wallet {wallet}"
    pin: str = typer.prompt(
        f"{what} (Enter: development PIN {DEV_PIN})",
        default="",
        show_default=False,
        hide_input=True,
        confirmation_prompt=new,
        err=True,
    )
    return pin.strip() or DEV_PIN


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``, for every output."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return re.sub(r"://[^/@]*@", "://***@", url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


#: The database URL schemes a ledger can live on.
DB_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg")


def check_db_url(url: str, option: str = "--db") -> str:
    """``url`` if offcash can keep a ledger there (SQLite or PostgreSQL), else a usage error."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in DB_SCHEMES:
        raise UsageProblem(
            f"{option} {redact_url(url)}: offcash keeps its ledger in SQLite "
            "(sqlite:///PATH) or PostgreSQL (postgresql://USER@HOST/DB), nothing else"
        )
    return url


@dataclass
class NetworkConfig:
    """The contents of ``offcash.json``."""

    currency: str
    algorithm: str
    banks: list[str]
    central_bank: str
    root_certificate: str  # base64 DER
    db_url: str | None = None  # None: SQLite file LEDGER_FILE in the network folder
    version: int = 1
    claim_window: int | None = None  # seconds; None: the ledger's default (30 days)
    operator_token: str | None = None  # bearer token of the HTTP API's operator calls
    legacy_algorithm: str | None = None  # after `network migrate`: the algorithm it left
    legacy_until: int | None = None  # after `network migrate`: the old certificates' end

    @property
    def params(self) -> NetworkParams:
        """The network parameters."""
        legacy = self.legacy_algorithm
        return NetworkParams(
            self.currency,
            SignatureAlgorithm.from_name(self.algorithm),
            legacy=None if legacy is None else SignatureAlgorithm.from_name(legacy),
            legacy_until=self.legacy_until or 0,
        )

    @property
    def root_der(self) -> bytes:
        """The central bank's root certificate, DER."""
        return base64.b64decode(self.root_certificate)


@dataclass
class WalletEntry:
    """One wallet in the registry."""

    name: str
    wallet_id: str
    bank: str
    owner: str
    lost: bool = False
    refunded: bool = False
    revoked: bool = False  # settlement refused its sync: revoked (a double spend, a bad log)
    se: str = "software"  # the kind of its secure element: "software" or "card"
    reader: str | None = None  # a card wallet's physical reader (None: a vpcd card process)
    #: its latest wallet certificate (base64 DER; public): the directory a payer seals one-way
    #: payments from; it binds the SHA-256 of the SE's KEM public key (EncryptionKeyDigest)
    certificate: str | None = None
    #: that KEM public key (base64; public), as the SE's CSR for the certificate gave it
    encryption_key: str | None = None
    #: a card wallet's certificate from a sync whose SYNC APPLY may not have finished (after
    #: it, ``certificate``): its card is authenticated against both, so a key changed at an
    #: algorithm migration never locks the wallet out of its own card
    next_certificate: str | None = None


@dataclass
class AccountEntry:
    """One customer account: its ledger id and bank."""

    name: str
    account_id: str
    bank: str


@dataclass
class Network:
    """A network folder, opened."""

    root: Path
    config: NetworkConfig
    wallets: dict[str, WalletEntry] = field(default_factory=dict)
    accounts: dict[str, AccountEntry] = field(default_factory=dict)

    @classmethod
    def create(cls, root: Path, config: NetworkConfig) -> Network:
        """Write a new network's config and empty registry in ``root``."""
        root.mkdir(parents=True, exist_ok=True)
        net = cls(root, config)
        with exclusive(net.lock_file):
            if (root / CONFIG_FILE).exists():
                raise CliRefusal(f"{root} already holds an offcash network")
            (root / WALLETS_DIR).mkdir(mode=0o700, exist_ok=True)
            atomic_write(root / CONFIG_FILE, _dump(asdict(config)))
            net.save_registry()
        return net

    @classmethod
    def open(cls, root: Path | None) -> Network:
        """Open the network in ``root`` (``CliRefusal`` if there is none)."""
        if root is None:
            raise CliRefusal("no network: pass --network DIR or set OFFCASH_NETWORK")
        try:
            raw: Any = json.loads((root / CONFIG_FILE).read_text(encoding="utf-8"))
            config = _typed(NetworkConfig, raw, root / CONFIG_FILE)
            _check_config(config, root / CONFIG_FILE)
        except FileNotFoundError:
            raise CliRefusal(
                f"{root} is not an offcash network (run `offcash network init`)"
            ) from None
        except (OSError, ValueError, TypeError) as exc:
            raise CliRefusal(f"{root}: unreadable network files: {exc}") from None
        net = cls(root, config)
        net.reload_registry()
        return net

    def reload_registry(self) -> None:
        """Read the wallet and account registries again from the folder."""
        root = self.root
        try:
            reg: Any = json.loads((root / REGISTRY_FILE).read_text(encoding="utf-8"))
            wallets = _entries(WalletEntry, reg, root / REGISTRY_FILE)
            accts: Any = {}
            if (root / ACCOUNTS_FILE).exists():
                accts = json.loads((root / ACCOUNTS_FILE).read_text(encoding="utf-8"))
            accounts = _entries(AccountEntry, accts, root / ACCOUNTS_FILE)
        except FileNotFoundError:
            raise CliRefusal(
                f"{root} is not an offcash network (run `offcash network init`)"
            ) from None
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise CliRefusal(f"{root}: unreadable network files: {exc}") from None
        self.wallets, self.accounts = wallets, accounts

    @property
    def lock_file(self) -> Path:
        """The lock file that serialises changes of the folder's registries."""
        return lock_path(self.root / REGISTRY_FILE)

    @contextlib.contextmanager
    def update(self) -> Iterator[Network]:
        """Change the registries atomically across processes: under the folder's lock, read
        them again, run the block (which changes ``wallets`` / ``accounts``), and save them if
        the block ends normally. Checks that decide a change (does this name exist?) belong
        inside the block."""
        with exclusive(self.lock_file):
            self.reload_registry()
            yield self
            self.save_registry()

    @property
    def db_url(self) -> str:
        """The ledger database URL (SQLite in the network folder unless configured)."""
        return self.config.db_url or f"sqlite:///{(self.root / LEDGER_FILE).resolve()}"

    @property
    def claim_window(self) -> int:
        """Seconds between a loss report and the refund it allows."""
        window = self.config.claim_window
        return DEFAULT_CLAIM_WINDOW if window is None else window

    @property
    def operator_token(self) -> str | None:
        """The HTTP API's operator token: ``OFFCASH_TOKEN``, else the one made at init."""
        return os.environ.get("OFFCASH_TOKEN") or self.config.operator_token

    def money(self, text: str, *, zero: bool = False) -> Money:
        """Parse an amount in the network's currency: a usage error if it is not one, or if it
        is zero unless ``zero`` (a deposit may be nothing; a payment, load or unload may not)."""
        try:
            money = Money.parse(text, self.config.currency)
        except MoneyError as exc:
            raise UsageProblem(f"invalid amount {text!r}: {exc}") from None
        if money.minor == 0 and not zero:
            raise UsageProblem(f"invalid amount {text!r}: must be more than 0")
        return money

    def show(self, minor: int) -> str:
        """An amount in minor units, formatted with the currency: ``12.50 EUR``."""
        return str(Money.of(minor, self.config.currency))

    def money_of(self, minor: int) -> Amount:
        """An amount in minor units, for a result: ``--json`` writes ``1250``, people read
        ``12.50`` (see ``offcash.cli.amount``)."""
        return Amount(minor, Currency.of(self.config.currency).digits)

    def save_config(self) -> None:
        """Persist the network config (``offcash.json``) atomically, as this object holds it
        (``network migrate`` changes it inside ``update``, under the folder's lock)."""
        atomic_write(self.root / CONFIG_FILE, _dump(asdict(self.config)))

    def save_registry(self) -> None:
        """Persist the wallet and account registries atomically (as this object holds them:
        to change them beside other processes, use ``update``)."""
        with exclusive(self.lock_file):
            data = {k: asdict(v) for k, v in sorted(self.wallets.items())}
            atomic_write(self.root / REGISTRY_FILE, _dump(data))
            accounts = {k: asdict(v) for k, v in sorted(self.accounts.items())}
            atomic_write(self.root / ACCOUNTS_FILE, _dump(accounts))

    def account(self, name: str) -> AccountEntry:
        """The registry entry of account ``name``."""
        entry = self.accounts.get(name)
        if entry is None:
            known = ", ".join(sorted(self.accounts)) or "none"
            raise CliRefusal(f"no account named {name!r} (known: {known})")
        return entry

    def wallet(self, name: str) -> WalletEntry:
        """The registry entry of wallet ``name``."""
        entry = self.wallets.get(name)
        if entry is None:
            known = ", ".join(sorted(self.wallets)) or "none"
            raise CliRefusal(f"no wallet named {name!r} (known: {known})")
        return entry

    def name_of(self, wallet_id: WalletId | str | None) -> str:
        """The name of a wallet id if the registry knows it, else the id itself."""
        text = str(wallet_id)
        for entry in self.wallets.values():
            if entry.wallet_id == text:
                return entry.name
        return text

    def named(self, text: str) -> str:
        """``text`` with every wallet id the registry knows replaced by the wallet's name."""
        for wallet_id in {e.wallet_id for e in self.wallets.values()}:
            text = text.replace(wallet_id, self.name_of(wallet_id))
        return text

    def resolve_payee(self, text: str) -> WalletId:
        """A payee given by registry name or by wallet id."""
        entry = self.wallets.get(text)
        if entry is not None:
            return WalletId.parse(entry.wallet_id)
        try:
            return WalletId.parse(text)
        except DecodeError:
            raise DecodeError(
                "payee", f"no wallet named {text!r} in this network, nor a wallet id"
            ) from None

    def directory_of(self, payee: WalletId) -> tuple[bytes | None, bytes | None]:
        """The latest certificate the registry holds for wallet ``payee`` and the KEM public
        key recorded beside it. Each is None if unknown or not base64: the caller verifies
        the certificate and checks the key against the digest it binds, so a damaged item is
        just a missing one."""
        for entry in self.wallets.values():
            if entry.wallet_id == str(payee) and entry.certificate is not None:
                return _b64(entry.certificate), _b64(entry.encryption_key)
        return None, None

    def se_path(self, name: str) -> Path:
        """The sealed secure-element file of wallet ``name``."""
        return self.root / WALLETS_DIR / f"{check_name(name)}.se"

    def card_path(self, name: str) -> Path:
        """The card memory file of card wallet ``name``."""
        return self.root / WALLETS_DIR / f"{check_name(name)}.card"

    def card_reader(self, name: str) -> str:
        """The reader holding card wallet ``name``'s card (its card process is started, the
        card "inserted", if it was not running)."""
        entry = self.wallet(name)
        return card_wallets.reader_of(self.root, name, self.card_path(name), entry.reader)

    def card_certificates(self, name: str) -> list[bytes]:
        """The certificates card wallet ``name``'s card is authenticated against (its latest,
        and one a sync was installing), each one that is a wallet certificate (a damaged one
        is left out); ``CardNotAuthenticated`` if the registry holds none."""
        entry = self.wallet(name)
        certificates = []
        for text in (entry.certificate, entry.next_certificate):
            try:
                der = base64.b64decode(text or "", validate=True)
                challenge.certificate_key(der)
            except (ValueError, DecodeError):
                continue
            certificates.append(der)
        if not certificates:
            raise CardNotAuthenticated(
                f"wallet {name}: the registry holds no readable certificate to authenticate "
                "its card with, so no PIN is sent to it"
            )
        return certificates

    def card(self, name: str) -> CardSecureElement:
        """Wallet ``name``'s card, authenticated as that wallet's (``CardNotAuthenticated``
        naming the reader if not), its PIN not presented (the PIN and PUK commands)."""
        reader, certificates = self.card_reader(name), self.card_certificates(name)
        try:
            return card_wallets.card(reader, certificates)
        except CardNotAuthenticated as exc:
            raise _foreign_card(name, reader, exc) from None

    def _card(self, name: str, pin: str) -> CardSecureElement:
        """Wallet ``name``'s card, authenticated (``card``), its PIN verified, and checked to
        hold that wallet (a reader holding another card, or a vpcd slot another card took,
        refuses before the PIN is sent)."""
        reader, certificates = self.card_reader(name), self.card_certificates(name)
        try:
            se = card_wallets.session(reader, pin, certificates)
        except CardNotAuthenticated as exc:
            raise _foreign_card(name, reader, exc) from None
        except PinBlocked:
            raise PinBlocked(
                f"wallet {name}: the PIN is blocked after too many wrong tries: unblock it "
                f"with its PUK (`offcash card unblock {name} --puk-file FILE`)"
            ) from None
        except WrongPin as exc:
            raise WrongPin(
                f"wallet {name}: {exc}: give its PIN with --pin-file FILE or OFFCASH_PIN"
            ) from None
        expected = WalletId.parse(self.wallet(name).wallet_id)
        found = se.status(now()).wallet_id
        if found != expected:
            card_wallets.close(reader)
            raise SecureElementError(
                f"the card in {reader!r} is not wallet {name}'s card "
                f"(it holds wallet {found if found is not None else 'none'})"
            )
        return se

    def open_se(self, name: str, pin: str) -> WalletSE:
        """Open wallet ``name``'s secure element to read it (``status``). An operation on it
        persists atomically, but refuses (``SecureElementError``) if another process changed
        the wallet since: to operate, use ``se``."""
        if self.wallet(name).se == "card":
            return self._card(name, pin)
        try:
            store, state = SealedFile.open(self.se_path(name), pin)
        except WrongPin:
            raise _wrong_pin(name) from None
        return SoftwareSecureElement(state, store)

    @contextlib.contextmanager
    def se(self, name: str, pin: str) -> Iterator[WalletSE]:
        """Wallet ``name``'s secure element, with its file locked for the whole block: no other
        process reads or changes the wallet until the block ends (load, operate, persist, and
        the settlement call that goes with it, e.g. a voucher and its load)."""
        if self.wallet(name).se == "card":
            with exclusive(lock_path(self.card_path(name))):
                yield self._card(name, pin)
            return
        try:
            opened = SealedFile.locked(self.se_path(name), pin)
            store, state = opened.__enter__()
        except WrongPin:
            raise _wrong_pin(name) from None
        with contextlib.ExitStack() as stack:
            stack.push(opened)
            yield SoftwareSecureElement(state, store)

    def new_se(self, name: str, pin: str) -> SoftwareSecureElement:
        """Create the sealed secure element file of a new wallet ``name``."""
        state = SoftwareSecureElement.new_state(self.config.params, self.config.root_der)
        store = SealedFile.create(self.se_path(name), pin, state)
        return SoftwareSecureElement(state, store)

    def new_card(self, name: str, pin: str, reader: str | None) -> tuple[CardSecureElement, str]:
        """Insert and personalise the blank card of a new card wallet ``name`` (in ``reader``,
        else a new vpcd card process over ``wallets/NAME.card``), its PIN verified; returns it
        and its PUK."""
        target = card_wallets.reader_of(self.root, name, self.card_path(name), reader)
        return card_wallets.personalise(target, self.config.params, self.config.root_der, pin)

    def drop_card(self, name: str) -> None:
        """Undo ``new_card`` for a vpcd card wallet whose creation failed: end the session,
        stop its card process and delete its memory."""
        card = card_process.running(self.root).get(name)
        if card is not None:
            card_wallets.close(card.reader)
        card_process.stop(self.root, name)
        self.card_path(name).unlink(missing_ok=True)


def _wrong_pin(name: str) -> WrongPin:
    return WrongPin(
        f"wrong PIN for wallet {name}: give its PIN with --pin-file FILE or OFFCASH_PIN "
        "(or its state file was altered)"
    )


def _foreign_card(name: str, reader: str, exc: CardNotAuthenticated) -> CardNotAuthenticated:
    return CardNotAuthenticated(
        f"the card in {reader!r} is not wallet {name}'s card ({exc}): no PIN or PUK was sent to it"
    )


def _dump(data: object) -> bytes:
    return (json.dumps(data, indent=2) + "\n").encode("utf-8")


def network_dir(obj: object) -> Path | None:
    """The ``--network`` folder stored by the root callback in the click context object."""
    if isinstance(obj, dict):
        value = obj.get("network")
        return value if isinstance(value, Path) else None
    return None


_T = TypeVar("_T")

#: The JSON types each annotation of the network files' dataclasses accepts.
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "bool": (bool,),
    "list[str]": (list,),
}


def _typed(cls: type[_T], raw: object, path: Path) -> _T:
    """``cls(**raw)`` once every field of ``raw`` has the type ``cls`` declares; otherwise a
    refusal that names the file and the field (a hand-edited file is never half-used)."""
    if not isinstance(raw, dict):
        raise CliRefusal(f"{path}: expected a JSON object, found {type(raw).__name__}")
    known = {f.name: str(f.type) for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise CliRefusal(f"{path}: unknown field(s) {', '.join(map(repr, unknown))}")
    for name, annotation in known.items():
        if name not in raw:
            continue
        value = raw[name]
        optional = annotation.endswith(" | None")
        base = annotation.removesuffix(" | None")
        if value is None and optional:
            continue
        ok = isinstance(value, _JSON_TYPES[base]) and not (
            base == "int" and isinstance(value, bool)
        )
        if ok and base == "list[str]":
            ok = all(isinstance(x, str) for x in value)
        if not ok:
            wanted = annotation.replace("list[str]", "a list of strings")
            found = json.dumps(value)[:40]
            raise CliRefusal(
                f"{path}: field {name!r} must be {wanted}, found {found} "
                "(was the file edited by hand?)"
            )
    try:
        return cls(**raw)
    except TypeError as exc:  # a required field is missing
        raise CliRefusal(f"{path}: {str(exc).split('()', 1)[-1].strip()}") from None


def _b64(text: str | None) -> bytes | None:
    """``text`` decoded from base64, or None if it is None or not base64."""
    if text is None:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return None


def _entries(cls: type[_T], raw: object, path: Path) -> dict[str, _T]:
    """A registry file: a JSON object of name -> entry, each entry strictly typed."""
    if not isinstance(raw, dict):
        raise CliRefusal(f"{path}: expected a JSON object, found {type(raw).__name__}")
    out = {}
    for key, value in raw.items():
        entry = _typed(cls, value, path)
        name = getattr(entry, "name", key)
        if name != key:
            raise CliRefusal(f"{path}: entry {key!r} holds the name {name!r}")
        out[key] = entry
    return out


def _check_config(config: NetworkConfig, path: Path) -> None:
    """Refuse a config whose values (not just types) cannot be right."""
    try:
        Currency.of(config.currency)
        config.params  # noqa: B018  (the algorithms, and a migration's direction)
        base64.b64decode(config.root_certificate, validate=True)
    except (ValueError, OffcashError) as exc:
        raise CliRefusal(f"{path}: {exc}") from None
    if config.claim_window is not None and config.claim_window < 0:
        raise CliRefusal(f"{path}: field 'claim_window' must be 0 or more seconds")
    if config.db_url is not None:
        try:
            check_db_url(config.db_url, "field 'db_url'")
        except UsageProblem as exc:
            raise CliRefusal(f"{path}: {exc}") from None
