"""One trained model as one directory: the Keras LSTM and its weights for the numpy forward pass, the template
vocabulary (with training counts), the TF-IDF scorer and the config. MLflow packages this directory as the artifact
of a pyfunc model, so the CLI and the service load exactly the same thing.

Loading reads ``lstm.npz`` with numpy alone; TensorFlow is imported only to convert a bundle saved before it had
one, and scikit-learn only when the TF-IDF scorer is first used.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import RCAError
from . import anomaly
from .deeplog import DeepLogConfig, next_probs, unique_rows
from .forward import Forward
from .sessions import build_sessions
from .vocabulary import Vocabulary
from .windows import windows

FILES = ("vocabulary.json", "counts.json", "tfidf.joblib", "config.json")
"""Always there; the model is lstm.npz, or lstm.keras in bundles older than it."""

log = logging.getLogger(__name__)


class ModelCorrupt(RCAError):
    """A model directory is missing files or holds unreadable ones (re-download, or retrain with `rca train`)."""


@dataclass
class ModelBundle:
    model: object  # Forward (numpy) once loaded; the keras.Model right after training
    vocab: Vocabulary
    counts: np.ndarray  # training count per vocabulary index (PAD/UNK at 0)
    _tfidf: object = field(repr=False)  # sklearn TfidfVectorizer, or the Path of tfidf.joblib until first used
    config: DeepLogConfig

    def save(self, directory: Path) -> Path:
        import joblib

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if isinstance(self.model, Forward):
            raise ValueError("a loaded bundle holds only the numpy weights; save the bundle `rca train` built")
        self.model.save(directory / "lstm.keras")
        Forward.from_keras(self.model).save(directory / "lstm.npz")
        self.vocab.save(directory / "vocabulary.json")
        (directory / "counts.json").write_text(json.dumps(self.counts.tolist()))
        joblib.dump(self.tfidf, directory / "tfidf.joblib")
        (directory / "config.json").write_text(json.dumps(self.config.to_dict(), indent=1))
        return directory

    @classmethod
    def load(cls, directory: Path) -> "ModelBundle":
        directory = Path(directory)
        has_npz = (directory / "lstm.npz").is_file()
        missing = [f for f in FILES if not (directory / f).is_file()]
        if not has_npz and not (directory / "lstm.keras").is_file():
            missing.insert(0, "lstm.npz (or lstm.keras)")
        if missing:
            raise ModelCorrupt(f"model copy at {directory} lacks {', '.join(missing)}")
        try:
            model = Forward.load(directory / "lstm.npz") if has_npz else _convert(directory)
            vocab = Vocabulary.load(directory / "vocabulary.json")
            counts = np.asarray(json.loads((directory / "counts.json").read_text()), dtype=np.int64)
            config = DeepLogConfig(**json.loads((directory / "config.json").read_text()))
        except Exception as exc:  # noqa: BLE001 - any unreadable file means the same thing to the caller
            raise ModelCorrupt(f"model copy at {directory} is unreadable ({type(exc).__name__}: {exc})") from None
        return cls(model, vocab, counts, directory / "tfidf.joblib", config)

    @property
    def tfidf(self):
        """The TF-IDF vectorizer, read on first use: only ``relevance`` needs it, and scikit-learn costs a second."""
        if isinstance(self._tfidf, Path):
            path = self._tfidf
            try:
                import joblib

                self._tfidf = joblib.load(path)
            except Exception as exc:  # noqa: BLE001
                raise ModelCorrupt(f"TF-IDF scorer at {path} is unreadable ({type(exc).__name__}: {exc})") from None
        return self._tfidf

    def score(self, table: pa.Table) -> pa.Table:
        """Per-record scores for a parsed table, in the table's row order."""
        return self.score_many([table])[0]

    def score_many(self, tables: list[pa.Table]) -> list[pa.Table]:
        """Score several independent tables (requests) with one pass through the LSTM.

        Each table keeps its own sessions; only the (history, event) windows are pooled, deduplicated and sent to
        the model together, which is what adaptive batching in the service buys.
        """
        if not tables:
            return []
        prepared = []
        for table in tables:
            sessions = build_sessions(table)
            encoded = self.vocab.encode(table["template_id"].to_pylist())
            X, y, rows = windows(sessions, encoded, self.config.window)
            prepared.append((table, encoded, rows, np.concatenate([X, y[:, None]], axis=1)))
        allpairs = np.concatenate([p[3] for p in prepared])
        # Score each distinct (history, event) pair once and spread the result: logs repeat their workflows.
        pairs, inv_all = unique_rows(allpairs)
        s = anomaly.score(next_probs(self.model, pairs[:, :-1]), pairs[:, -1], self.config.top_g)
        per_pair = pa.array(
            [[self.vocab.template_id(int(k)) for k in s.expected[i] if k >= 2] if s.anomalous[i] else None
             for i in range(len(pairs))],
            pa.list_(pa.string()),
        )
        out, start = [], 0
        for table, encoded, rows, own in prepared:
            inv = inv_all[start:start + len(own)]
            start += len(own)
            out.append(self._spread(table, encoded, rows, inv, s, per_pair))
        return out

    def _spread(self, table: pa.Table, encoded: np.ndarray, rows: np.ndarray, inv: np.ndarray,
                s: "anomaly.Scores", per_pair: pa.Array) -> pa.Table:
        n = table.num_rows
        out_anomaly = np.zeros(n)
        out_rank = np.zeros(n, np.int64)
        out_flag = np.zeros(n, bool)
        out_anomaly[rows], out_rank[rows], out_flag[rows] = s.anomaly[inv], s.rank[inv], s.anomalous[inv]
        where = np.full(n, -1, np.int64)
        where[rows] = inv
        expected = pc.take(per_pair, pa.array(where, mask=where < 0))
        counts = self.counts[np.clip(encoded, 0, len(self.counts) - 1)]
        counts[encoded == 1] = 0  # UNK: never seen in training, the rarest of all
        sev = anomaly.severity(table["level"].to_pylist())
        imp = anomaly.importance(out_anomaly, sev, anomaly.rarity(counts))
        return pa.table({
            "anomaly": out_anomaly, "rank": out_rank, "anomalous": out_flag, "importance": imp,
            "expected": expected,
        })

    def relevance(self, issue: str, messages: list[str]) -> np.ndarray:
        """TF-IDF cosine similarity of each message to the operator's issue text."""
        if not messages:
            return np.zeros(0)
        q = self.tfidf.transform([issue])
        m = self.tfidf.transform(messages)
        return np.asarray((m @ q.T).todense()).ravel()  # rows are L2-normalised: dot = cosine


def _convert(directory: Path) -> Forward:
    """Export the weights of a bundle saved before lstm.npz existed, once: the next load reads the .npz alone."""
    from .deeplog import _keras

    forward = Forward.from_keras(_keras().models.load_model(directory / "lstm.keras", compile=False))
    try:
        forward.save(directory / "lstm.npz")
    except OSError as exc:  # a read-only copy still scores; it converts again next time
        log.warning("cannot write %s (%s); converting again on each load", directory / "lstm.npz", exc)
    return forward
