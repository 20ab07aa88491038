"""Keep pyarrow from importing pandas in a process that never gives it a pandas object.

pyarrow imports pandas (~150 ms, more than parsing 20k lines) the first time it converts any Python value, only to
ask whether the value is a pandas object; a forked parse worker that has not imported it yet pays again. Letting
that one probe fail makes pyarrow remember "no pandas" for such probes; anything that really asks for pandas
(``to_pandas()``, ``import pandas``) still gets it, because pyarrow retries the import when it is required.
Call it only where no pandas object will reach pyarrow (``rca parse``, parse workers): a pandas Series passed to
``pa.array`` afterwards would be read as a plain sequence.
"""

from __future__ import annotations

import sys


class _NoPandas:
    """A meta-path finder that makes ``import pandas`` fail while it is installed."""

    def find_spec(self, name, path=None, target=None):
        if name == "pandas":
            raise ModuleNotFoundError("pandas kept out of this process", name=name)
        return None


def keep_pandas_out() -> None:
    if "pandas" in sys.modules:
        return  # already paid for; pandas-aware conversion stays on
    import pyarrow as pa

    finder = _NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        pa.scalar(0)  # pyarrow's one lazy probe: it finds no pandas and does not probe again
    finally:
        sys.meta_path.remove(finder)
