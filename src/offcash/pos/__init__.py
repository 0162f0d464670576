"""``offcash pos``: a point of sale in the browser, served by this machine to itself.

``till`` (the payee and its day's history), ``scan`` (camera frames to one message),
``security`` (Host, Origin, CSRF) and ``app`` (the FastAPI app, the page and its assets in
``static/``). See docs/POS.md.
"""
