"""``python -m offcash``: the same as the ``offcash`` command (works without the venv on PATH)."""

from offcash.cli.main import app

app(prog_name="offcash")
