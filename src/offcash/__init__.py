"""offcash: open, auditable offline payments for central bank digital currency.

The core (``domain``, ``encoding``, ``crypto``, ``protocol``, ``verification``, ``se``,
``wallet``) opens no socket and touches no database; ``ledger``, ``api``, ``transports`` and
``cli`` are the outer layers built on it.
"""

__version__ = "0.1.0"
