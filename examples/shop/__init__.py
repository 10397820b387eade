"""The playbook's shop as a FastAPI service on asyncdyn's entity layer.

``design`` declares the single-table design, ``schemas`` the HTTP models, ``app`` the
service (``uvicorn examples.shop.app:app``), ``loadtest`` drives it with wrk.
"""
