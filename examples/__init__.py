"""Runnable examples of asyncdyn: a FastAPI shop on the entity layer, its load test, a bulk
loader. A package so that tests and ``python -m examples.shop.loadtest`` import them."""
