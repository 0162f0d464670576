"""The risk and resilience simulator: a population living on the real offcash for days.

An outer layer (like ``offcash.cli``): it drives the real secure elements, protocol and ledger,
and nothing in the core imports it. ``scenario`` reads the TOML, ``model`` holds the agents,
demand and outages, ``engine`` runs the days, ``metrics`` counts, ``report`` writes
``summary.json`` and ``report.html``, ``sweep`` runs one scenario for several limit values.
See docs/SIMULATOR.md.
"""
