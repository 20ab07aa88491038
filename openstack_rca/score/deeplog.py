"""The DeepLog next-event model (Du et al., CCS 2017): an LSTM reads the last ``window`` template indexes of a
session and predicts a distribution over the next one. Trained on mostly-normal logs, it learns the workflows
(boot: claim -> image -> VIF plugged -> spawned); an event it did not expect is a candidate anomaly.

TensorFlow is imported here and only here, and only to train: scoring runs the exported weights in numpy
(``forward``), so parsing, scoring and the CLI start without it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional

import numpy as np

from ..config import ModelConfig
from ..errors import InvalidInput
from .forward import Forward


@dataclass(frozen=True)
class DeepLogConfig:
    window: int = ModelConfig.window
    """h: how many previous events predict the next (defaults come from the one config object)."""
    embed_dim: int = 32
    hidden: int = 64
    layers: int = 2
    top_g: int = ModelConfig.top_g
    """g: an event is anomalous when it is not among the model's g most likely next events. DeepLog used 9 on HDFS
    (~30 templates); OpenStack sets here have 200+, and 15 halves the false alarms on held-out normal traffic."""
    epochs: int = ModelConfig.epochs
    batch_size: int = 1024
    learning_rate: float = 0.003
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("window", "embed_dim", "hidden", "layers", "top_g", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise InvalidInput(f"{name} must be >= 1 (got {getattr(self, name)})")
        if not 0 < self.learning_rate < 1:
            raise InvalidInput(f"learning_rate must be in (0, 1) (got {self.learning_rate})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _keras():
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras


def build(vocab_size: int, cfg: DeepLogConfig):
    keras = _keras()
    keras.utils.set_random_seed(cfg.seed)
    layers = [keras.Input(shape=(cfg.window,), dtype="int32"), keras.layers.Embedding(vocab_size, cfg.embed_dim)]
    for i in range(cfg.layers):
        layers.append(keras.layers.LSTM(cfg.hidden, return_sequences=i < cfg.layers - 1))
    layers.append(keras.layers.Dense(vocab_size, activation="softmax"))
    model = keras.Sequential(layers, name="deeplog")
    model.compile(
        optimizer=keras.optimizers.Adam(cfg.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=[keras.metrics.SparseTopKCategoricalAccuracy(k=cfg.top_g, name="top_g_accuracy")],
    )
    return model


def fit(X: np.ndarray, y: np.ndarray, vocab_size: int, cfg: DeepLogConfig, *,
        validation: Optional[tuple[np.ndarray, np.ndarray]] = None,
        on_epoch: Optional[Callable[[int, dict], None]] = None):
    """Train on windows ``X`` -> next ``y``; returns ``(model, history)`` (history: metric -> per-epoch values)."""
    keras = _keras()
    model = build(vocab_size, cfg)
    callbacks = []
    if on_epoch is not None:
        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: on_epoch(epoch, logs or {})))
    hist = model.fit(X, y, epochs=cfg.epochs, batch_size=cfg.batch_size, validation_data=validation, verbose=0,
                     shuffle=True, callbacks=callbacks)
    return model, {k: [float(v) for v in vals] for k, vals in hist.history.items()}


def unique_rows(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(unique rows, inverse)`` of a 2-D int array by hashing rows (Arrow), O(n) where ``np.unique(axis=0)``
    sorts; the unique rows come in first-seen order."""
    a = np.ascontiguousarray(a)
    n, width = a.shape
    if n == 0:
        return a, np.zeros(0, np.int64)
    import pyarrow as pa

    rows = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width * a.itemsize), n, [None, pa.py_buffer(a)])
    enc = rows.dictionary_encode()
    uniq = np.frombuffer(enc.dictionary.buffers()[1], dtype=a.dtype)[: len(enc.dictionary) * width]
    return uniq.reshape(-1, width).copy(), enc.indices.to_numpy().astype(np.int64)


def next_probs(model, X: np.ndarray, batch_size: int = 16384) -> np.ndarray:
    """P(next event) for every window, from the numpy ``Forward`` or a Keras model. Identical windows are predicted
    once: logs repeat themselves, so this is usually a many-fold saving with exactly the same result."""
    numpy_pass = isinstance(model, Forward)
    if len(X) == 0:
        return np.zeros((0, model.vocab_size if numpy_pass else model.output_shape[-1]), np.float32)
    uniq, inverse = unique_rows(X)
    if numpy_pass:
        probs = model.probs(uniq)
    elif len(uniq) <= batch_size:
        probs = model.predict_on_batch(uniq)
    else:
        probs = model.predict(uniq, batch_size=batch_size, verbose=0)
    return np.asarray(probs, dtype=np.float32)[inverse]
