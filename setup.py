"""Only for the optional C extension; all metadata lives in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        # optional: without a compiler the pure-Python masking (same output, slower) is used
        Extension("openstack_rca.parse._speedups", ["openstack_rca/parse/_speedups.c"], optional=True),
    ]
)
