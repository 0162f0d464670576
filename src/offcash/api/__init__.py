"""The settlement service over HTTP: a FastAPI app (``app``), a client (``client``), ``serve``."""
