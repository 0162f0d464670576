"""The settlement service over HTTP: a FastAPI app (``create_app``), a client (``Client``),
``serve``.

``Client`` implements ``offcash.wallet.Operations``, like the in-process ``LedgerService``.
"""

from offcash.api.app import create_app
from offcash.api.client import Client
from offcash.api.server import serve

__all__ = ["Client", "create_app", "serve"]
