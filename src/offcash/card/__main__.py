"""A card process: ``python -m offcash.card --eeprom FILE [--host H] --port N``.

Runs the offcash card application over the card memory in FILE (a blank card if the file does
not exist) and keeps it inserted in vsmartcard's vpcd reader at H:N (default 127.0.0.1 and the
first slot's port): when vpcd is not there yet, or pcscd restarts, it connects again. It ends on
SIGTERM (``offcash card stop``).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

from offcash.card.link import VPCD_PORT, insert
from offcash.se.card.applet import Applet
from offcash.se.card.eeprom import FileEeprom


def main() -> None:
    """Run one card until terminated."""
    parser = argparse.ArgumentParser(prog="python -m offcash.card", description=__doc__)
    parser.add_argument("--eeprom", type=Path, required=True, help="the card's memory file")
    parser.add_argument("--host", default="127.0.0.1", help="vpcd's host")
    parser.add_argument("--port", type=int, default=VPCD_PORT, help="vpcd's slot port")
    args = parser.parse_args()
    applet = Applet(FileEeprom(args.eeprom))
    while True:
        with contextlib.suppress(OSError):  # vpcd not listening (pcscd down): try again
            insert(applet, args.host, args.port)
        applet.reset()  # out of the reader: the session ends
        time.sleep(0.2)


if __name__ == "__main__":
    main()
