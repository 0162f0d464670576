"""The secure element: its interface, a software implementation and its sealed, locked file.

``SecureElement`` is where a hardware SE, a smart card or a TEE plugs in;
``SoftwareSecureElement`` implements it in software over a ``StateStore``; ``SealedFile`` is
the PIN-sealed, file-locked store, a base replaced atomically and a journal appended to
(``SealedFile.locked`` for a read-modify-write that no other process interleaves).
"""

from offcash.se.filelock import Busy
from offcash.se.interface import Received, SecureElement, Status, SyncUpload
from offcash.se.log import Entry, EntryType
from offcash.se.software import SoftwareSecureElement
from offcash.se.storage import SealedFile, StateStore

__all__ = [
    "Busy",
    "Entry",
    "EntryType",
    "Received",
    "SealedFile",
    "SecureElement",
    "SoftwareSecureElement",
    "StateStore",
    "Status",
    "SyncUpload",
]
