"""Links to an offcash card: PC/SC readers, sockets, and the card processes of card wallets.

The card application and ``CardSecureElement`` are core (``offcash.se.card``); this package
holds what does I/O: ``link`` (vsmartcard's vpcd protocol, a local card server and its socket
channel), ``pcsc`` (the PC/SC channel through pyscard), ``process`` (card processes in vpcd's
reader slots, for ``offcash card``), ``wallets`` (a card wallet's session for the CLI) and
``kind`` (``CardFactory``, the card for the parametrised test suites).
"""
