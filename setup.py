"""The optional C extension; everything else about the package is in pyproject.toml.

``optional=True``: when there is no working C compiler (or no Python headers), setuptools
prints a warning and installs the package without ``asyncdyn._speedups``; asyncdyn then
decodes with its pure-Python functions (asyncdyn.marshal.COMPILED is False).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[Extension("asyncdyn._speedups", ["asyncdyn/_speedups.c"], optional=True)],
)
