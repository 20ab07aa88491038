"""Sessions, vocabulary and windows: the inputs of the DeepLog model."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from openstack_rca.errors import InvalidInput
from openstack_rca.score import PAD, UNK, Vocabulary, build_sessions, session_keys, windows


def table(rows):
    cols = ["source", "line_no", "timestamp", "pid", "service", "request_id", "instance_id", "template_id"]
    data = {c: [r.get(c) for r in rows] for c in cols}
    types = {"line_no": pa.int32(), "pid": pa.int32()}
    return pa.table({c: pa.array(v, types.get(c, pa.string())) for c, v in data.items()})


ROWS = [
    # instance beats request beats stream
    dict(source="c.log", line_no=1, timestamp="2026-11-23T10:00:02", pid=1, service="nova-compute",
         request_id="req-a", instance_id="i-1", template_id="T2"),
    dict(source="a.log", line_no=1, timestamp="2026-11-23T10:00:01", pid=7, service="nova-api",
         request_id="req-a", instance_id="i-1", template_id="T1"),
    dict(source="a.log", line_no=2, timestamp="2026-11-23T10:00:03", pid=7, service="nova-api",
         request_id="req-b", template_id="T3"),
    dict(source="c.log", line_no=2, timestamp="2026-11-23T10:00:04", pid=1, service="nova-compute", template_id="T4"),
    dict(source="c.log", line_no=3, timestamp="2026-11-23T10:00:05", pid=1, service="nova-compute", template_id="T4"),
    dict(source="m.log", line_no=5, template_id="T5"),  # no timestamp, no pid: the file is the stream
    dict(source="m.log", line_no=4, template_id="T6"),
]


def test_session_keys_prefer_instance_then_request_then_stream():
    assert session_keys(table(ROWS)).to_pylist() == [
        "instance:i-1", "instance:i-1", "request:req-b", "stream:nova-compute:1", "stream:nova-compute:1",
        "stream:m.log", "stream:m.log",
    ]


def test_sessions_are_ordered_by_time_then_file_position():
    s = build_sessions(table(ROWS))
    by_key = {k: s.rows(i).tolist() for i, k in enumerate(s.keys)}
    assert by_key["instance:i-1"] == [1, 0]  # nova-api's 10:00:01 before nova-compute's 10:00:02
    assert by_key["stream:m.log"] == [6, 5]  # no timestamps: line 4 before line 5
    assert sorted(s.order.tolist()) == list(range(len(ROWS))) and s.lengths().sum() == len(ROWS)


def test_vocabulary_is_deterministic_and_maps_unseen_to_unknown(tmp_path):
    v = Vocabulary.build(["b", "a", "a", "c", "c", "c", "rare"], {"a": "A <*>"}, min_count=2)
    assert v.ids == ["c", "a"] and len(v) == 4
    assert v.encode(["a", "c", "rare", "never"]).tolist() == [3, 2, UNK, UNK]
    assert v.template_id(3) == "a" and v.template_id(PAD) is None
    v.save(tmp_path / "vocab.json")
    assert Vocabulary.load(tmp_path / "vocab.json").ids == v.ids
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(InvalidInput, match="rca train"):
        Vocabulary.load(tmp_path / "bad.json")


def test_windows_pad_at_session_starts_and_never_cross_sessions():
    t = table(ROWS)
    s = build_sessions(t)
    v = Vocabulary.build(t["template_id"].to_pylist())
    X, y, rows = windows(s, v.encode(t["template_id"].to_pylist()), h=3)
    assert X.shape == (len(ROWS), 3) and len(y) == len(rows) == len(ROWS)
    enc = dict(zip(t["template_id"].to_pylist(), v.encode(t["template_id"].to_pylist()).tolist()))
    at = {int(r): (X[i].tolist(), int(y[i])) for i, r in enumerate(rows)}
    assert at[1] == ([PAD, PAD, PAD], enc["T1"])  # first event of instance i-1
    assert at[0] == ([PAD, PAD, enc["T1"]], enc["T2"])  # sees only its own session's history
    assert at[4] == ([PAD, PAD, enc["T4"]], enc["T4"])


def test_windows_match_a_naive_loop_on_random_sessions():
    rng = np.random.default_rng(0)
    rows = [dict(source="x.log", line_no=i, timestamp=None, pid=int(rng.integers(0, 5)), service="nova-compute",
                 template_id=f"T{int(rng.integers(0, 9))}") for i in range(500)]
    t = table(rows)
    s = build_sessions(t)
    enc = Vocabulary.build(t["template_id"].to_pylist()).encode(t["template_id"].to_pylist())
    X, y, order = windows(s, enc, h=4)
    i = 0
    for k in range(len(s)):
        seq = [int(enc[r]) for r in s.rows(k)]
        for p, e in enumerate(seq):
            hist = seq[max(0, p - 4):p]
            assert X[i].tolist() == [PAD] * (4 - len(hist)) + hist and y[i] == e
            i += 1


def test_empty_input_and_bad_window():
    s = build_sessions(table([]))
    assert len(s) == 0
    X, y, rows = windows(s, np.zeros(0, np.int32), h=5)
    assert X.shape == (0, 5)
    with pytest.raises(InvalidInput, match="--window"):
        windows(s, np.zeros(0, np.int32), h=0)
