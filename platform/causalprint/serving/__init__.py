"""Serving: the Ray Serve application (attribution, verification, enrolment), its HTTP API, keys and limits,
the web page, and a Python client.

Layout: ``config`` (typed settings), ``schemas`` (request/response models), ``api`` (FastAPI routes over a
backend), ``model_server`` (the model side, free of Ray), ``deployments`` (the two Serve deployments), ``app``
(the builder ``serve/config.yaml`` names), ``launcher`` (``causalprint serve``), ``client``.
"""
