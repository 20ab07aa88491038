"""The trained DeepLog LSTM's forward pass in numpy, so scoring never imports TensorFlow.

Training exports the Keras weights to ``lstm.npz`` beside ``lstm.keras``; a cold process loads them in milliseconds
where ``import keras`` takes seconds. The arithmetic is Keras 3's LSTM (gates i, f, c, o; sigmoid and tanh) in
float32, equal to Keras's probabilities to round-off (about 1e-7).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import numpy as np

FORMAT = 1
"""Bumped when the layout of ``lstm.npz`` changes; a reader refuses a format it does not know (ModelCorrupt)."""
CHUNK = 1024
"""Windows per step: one chunk's gate activations (CHUNK x 4 x hidden floats) stay in the CPU cache."""


class Forward:
    """Embedding -> stacked LSTMs -> Dense softmax: ``probs(X)`` is ``model.predict(X)`` for windows ``X``."""

    def __init__(self, embedding: np.ndarray, lstms: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                 dense: tuple[np.ndarray, np.ndarray]):
        if not lstms:
            raise ValueError("a DeepLog model has at least one LSTM layer")
        self.weights = {"embedding": embedding, "dense_kernel": dense[0], "dense_bias": dense[1]}
        for i, (kernel, recurrent, bias) in enumerate(lstms):
            self.weights.update({f"lstm{i}_kernel": kernel, f"lstm{i}_recurrent": recurrent, f"lstm{i}_bias": bias})
        f32 = [(np.asarray(k, np.float32), np.asarray(r, np.float32), np.asarray(b, np.float32)) for k, r, b in lstms]
        prev = embedding.shape[1]
        for i, (k, r, b) in enumerate(f32):
            h = r.shape[0]
            if k.shape != (prev, 4 * h) or r.shape != (h, 4 * h) or b.shape != (4 * h,):
                raise ValueError(f"LSTM layer {i} has kernel {k.shape}, recurrent {r.shape}, bias {b.shape}; "
                                 f"expected ({prev}, {4 * h}), ({h}, {4 * h}), ({4 * h},)")
            prev = h
        vocab = embedding.shape[0]
        if dense[0].shape != (prev, vocab) or dense[1].shape != (vocab,):
            raise ValueError(f"dense layer {dense[0].shape} does not map hidden {prev} to vocabulary {vocab}")
        # Gates reordered i, f, c, o -> i, f, o, c: one sigmoid over the first three, one tanh over the last.
        self._lstms = [(_gates(k), _gates(r), _gates(b)) for k, r, b in f32]
        k0, _, b0 = self._lstms[0]
        # the first layer's input projection, once per vocabulary entry instead of once per window position
        self._first = np.asarray(embedding, np.float32) @ k0 + b0
        self._dense = (np.ascontiguousarray(dense[0], np.float32), np.asarray(dense[1], np.float32))

    @property
    def vocab_size(self) -> int:
        return self._first.shape[0]

    def probs(self, X: np.ndarray) -> np.ndarray:
        """P(next event) for each window (rows of vocabulary indexes), float32 ``[len(X), vocab]``."""
        X = np.asarray(X)
        out = np.empty((len(X), self.vocab_size), np.float32)
        if len(X) == 0:
            return out
        order = np.lexsort(X.T[::-1])  # sorted rows: windows that share a prefix are neighbours
        X = X[order]
        with np.errstate(over="ignore"):  # exp overflows to inf for saturated gates: sigmoid is then exactly 0
            for s in range(0, len(X), CHUNK):
                out[order[s:s + CHUNK]] = self._chunk(X[s:s + CHUNK])
        return out

    def _chunk(self, X: np.ndarray) -> np.ndarray:
        """Sorted windows -> probabilities. The LSTM state after step t depends only on the first t + 1 events, and
        windows of one workflow share them: each step runs once per distinct prefix (about 2/3 of the work)."""
        n, steps = X.shape
        new = np.zeros(n, bool)
        new[0] = True
        group = np.zeros(n, np.int64)  # each window's prefix at the previous step; one empty prefix to start
        states = [(np.zeros((1, r.shape[0]), np.float32),) * 2 for _, r, _ in self._lstms]
        for t in range(steps):
            new[1:] |= X[1:, t] != X[:-1, t]
            first = np.flatnonzero(new)  # the first window of each distinct prefix of length t + 1
            parent = group[first]
            group = np.cumsum(new) - 1
            x = self._first[X[first, t]]  # the first layer's input projection, looked up
            for li, (kernel, recurrent, bias) in enumerate(self._lstms):
                if li:
                    x = h @ kernel
                    x += bias
                h, c = _step(x, states[li][0][parent], states[li][1][parent], recurrent)
                states[li] = (h, c)
        logits = h @ self._dense[0]
        logits += self._dense[1]
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        return logits if len(logits) == n else logits[group]  # repeated windows share one row

    # -- persistence ----------------------------------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        """Write ``lstm.npz`` atomically: a reader never sees half a file, even when two processes convert at once."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")  # mkstemp would make it 0600
        try:
            with open(tmp, "xb") as f:
                np.savez(f, format=np.int64(FORMAT), layers=np.int64(len(self._lstms)), **self.weights)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: Path) -> "Forward":
        with np.load(path, allow_pickle=False) as z:
            if int(z["format"]) != FORMAT:
                raise ValueError(f"{path} has format {int(z['format'])}, this version reads {FORMAT}")
            layers = int(z["layers"])
            lstms = [(z[f"lstm{i}_kernel"], z[f"lstm{i}_recurrent"], z[f"lstm{i}_bias"]) for i in range(layers)]
            return cls(z["embedding"], lstms, (z["dense_kernel"], z["dense_bias"]))

    @classmethod
    def from_keras(cls, model) -> "Forward":
        """The weights of a model ``deeplog.build`` made; refuses any layer setting this pass does not compute."""
        kinds = [type(layer).__name__ for layer in model.layers]
        if len(kinds) < 3 or kinds[0] != "Embedding" or kinds[-1] != "Dense" or set(kinds[1:-1]) != {"LSTM"}:
            raise ValueError(f"not a DeepLog model: layers {kinds}")
        emb, *lstm_layers, dense = model.layers
        want = {"activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True, "go_backwards": False,
                "stateful": False}
        for layer in lstm_layers:
            conf = layer.get_config()
            odd = {k: conf.get(k) for k, v in want.items() if conf.get(k) != v}
            if odd:
                raise ValueError(f"LSTM layer {layer.name} has settings the numpy pass does not compute: {odd}")
        if emb.get_config().get("mask_zero") or dense.get_config().get("activation") != "softmax":
            raise ValueError("expected an unmasked Embedding and a softmax Dense layer")
        lstms = [tuple(layer.get_weights()) for layer in lstm_layers]
        return cls(emb.get_weights()[0], lstms, tuple(dense.get_weights()))


def _step(x: np.ndarray, h: np.ndarray, c: np.ndarray, recurrent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM step, gates in i, f, o, c order: ``x`` is the input projection with the bias; ``c`` is updated."""
    hid = recurrent.shape[0]
    z = h @ recurrent
    z += x
    gates = z[:, :3 * hid]
    np.negative(gates, out=gates)
    np.exp(gates, out=gates)
    gates += 1.0
    np.reciprocal(gates, out=gates)  # sigmoid(i), sigmoid(f), sigmoid(o)
    cand = np.tanh(z[:, 3 * hid:])
    cand *= z[:, :hid]
    c *= z[:, hid:2 * hid]
    c += cand
    h = np.tanh(c)
    h *= z[:, 2 * hid:3 * hid]
    return h, c


def _gates(w: np.ndarray) -> np.ndarray:
    """Keras's gate blocks i, f, c, o (last axis) -> i, f, o, c."""
    i, f, c, o = np.split(w, 4, axis=-1)
    return np.ascontiguousarray(np.concatenate([i, f, o, c], axis=-1))
