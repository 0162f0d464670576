"""The ``offcash`` command line: a pilot network on one laptop (see ``offcash.cli.main``)."""
