"""The MLflow pyfunc face of a trained bundle: ``mlflow.pyfunc.load_model("models:/openstack-rca-lstm@champion")``
gives an object whose ``predict(records DataFrame)`` returns per-record scores."""

from __future__ import annotations

import mlflow.pyfunc
import pyarrow as pa

from ..parse.records import SCHEMA
from .bundle import ModelBundle


class DeepLogPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        self.bundle = ModelBundle.load(context.artifacts["bundle"])

    def predict(self, context, model_input, params=None):
        cols = {}
        for f in SCHEMA:
            if f.name in model_input.columns:
                # from_pandas reads NaN as null: an integer column with gaps arrives from pandas as floats
                cols[f.name] = pa.Array.from_pandas(model_input[f.name], type=f.type)
            else:
                cols[f.name] = pa.nulls(len(model_input), f.type)
        return self.bundle.score(pa.table(cols)).to_pandas()
