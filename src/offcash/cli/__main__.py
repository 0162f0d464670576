"""``python -m offcash.cli``: the same as the ``offcash`` command."""

from offcash.cli.main import app

app(prog_name="offcash")
