"""Build configuration beside pyproject.toml: the optional C speed-ups.

capsvc/_speedups.c (which includes capsvc/_textline.h) is built when a C compiler and the Python
headers are present; when the build fails, capsvc installs without it and uses its pure-Python
code (``optional=True``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "capsvc._speedups",
            ["capsvc/_speedups.c"],
            depends=["capsvc/_textline.h"],
            optional=True,
        )
    ]
)
