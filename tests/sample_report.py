"""A hand-made analysis report in the engine's contract, for the CLI and dashboard rendering tests: a cinder
scheduler bug logged on controller-1 for an issue about compute-2, by a model trained on another deployment, with
hostile log text in one line."""

from __future__ import annotations

import copy

QUOTE = "TypeError: consume_from_volume() takes exactly 2 arguments (1 given)"
UNFAMILIAR = ("98% of these records have templates never seen in training and the model finds 99% of them "
              "unexpected: it comes from another deployment, so its "
              "novelty counts for little here; `rca train` on this cloud's normal logs")
HOST_MISMATCH = "the issue names compute-2, but the root cause was logged on controller-1"
HOSTILE = "Exception during message handling [bold red]boom[/] [link=http://evil]click[/link] \x1b[2J"
API = "attach volume attachment api http 409"
CHAIN_TEXT = "Conflict updating volume attachment 0f3e: attachment not available"
SIGNALS = {"severity": 1.0, "lexical": 0.41, "relevance": 0.7, "lstm": 0.3, "novelty": 0.0, "model_weight": 0.1,
           "onset": 1.0}


def _evidence(i: int, role: str, text: str, service: str, host: str | None, level: str, count: int) -> dict:
    ts = f"2026-11-23T09:38:{40 + i:02d}.205+00:00"
    return {
        "id": f"E{i}", "rank": i, "role": role, "text": text, "service": service, "host": host, "level": level,
        "timestamp": ts, "source": f"/logs/{service}-{host or 'x'}.log", "line_no": 100 + i, "exception": None,
        "code": None, "request_id": "req-1", "score": round(0.95 - i / 20, 2), "signals": dict(SIGNALS),
        "expected": ["Volume <*> attached"], "count": count, "template_id": f"t{i}", "template": text,
        "component": service, "first_seen": ts, "last_seen": ts,
        "context": [{"line_no": 100 + i, "level": level, "text": text, "self": True}],
    }


_REPORT = {
    "issue": "volume attach fails on compute-2",
    "mode": "fast", "requested_mode": "fast", "onset": "2026-11-23T09:38:41.205+00:00",
    "root_cause": {
        "component": "cinder", "category": "scheduling", "confidence": 0.82,
        "summary": f"cinder (scheduling): {QUOTE}", "quote": QUOTE, "evidence_id": "E1",
        "service": "cinder-scheduler", "host": "controller-1", "host_matches": False,
        "first_seen": "2026-11-23T09:38:41.205+00:00",
        "code": {"module": "cinder/scheduler/filter_scheduler.py", "function": "_choose_top_backend", "line": 304,
                 "exception": "TypeError", "source": "backend.consume_from_volume(request_spec)"},
        "chain": [
            {"time": "2026-11-23T09:38:41.205+00:00", "service": "cinder-scheduler", "level": "ERROR",
             "text": QUOTE, "request_id": "req-1", "evidence_id": "E1", "root_cause": True, "api": None},
            {"time": "2026-11-23T09:38:42.500+00:00", "service": "nova-api", "level": "WARNING",
             "text": CHAIN_TEXT, "request_id": "req-1", "evidence_id": None, "root_cause": False, "api": API},
        ],
        "warnings": [UNFAMILIAR],
    },
    "evidence": [
        _evidence(1, "root_cause", f"Failed to schedule_create_volume: {QUOTE}", "cinder-scheduler", "controller-1",
                  "ERROR", 3),
        _evidence(2, "same_failure", HOSTILE, "cinder-scheduler", "controller-1", "ERROR", 1234),
        _evidence(3, "symptom", "Instance 6a4d7c1e-2b3f-4a5d-8e9f-0c1b2a3d4e5f volume attach failed",
                  "neutron-openvswitch-agent", None, "WARNING", 7),
    ],
    "timeline": [],
    "affected": {"instances": ["6a4d7c1e-2b3f-4a5d-8e9f-0c1b2a3d4e5f"], "requests": ["req-1"],
                 "services": ["cinder-scheduler", "nova-api"]},
    "series": {"start": "2026-11-23T09:00:00+00:00", "bucket_s": 60.0, "unit": "unexpected events per minute",
               "times": [f"2026-11-23T09:{m:02d}:30+00:00" for m in range(40)],
               "services": {"cinder-scheduler": [0.0] * 38 + [42.0, 17.0], "nova-api": [1.0] * 39 + [6.0]}},
    "warnings": [UNFAMILIAR, HOST_MISMATCH],
    "stats": {"records": 5000, "model_known_records": 0.02},
    "narrative": {"text": "The earliest unexpected event is [E1].", "source": "offline", "citations": ["E1"]},
    "model": {"name": "openstack-rca-lstm", "version": "1", "alias": "champion", "source": "registry"},
    "source": {"records": 5000},
    "timings_ms": {"parse": 12.0, "diagnose": 20.0, "total": 40.0},
}


def sample_report() -> dict:
    """A fresh copy, so a test may change it."""
    return copy.deepcopy(_REPORT)
