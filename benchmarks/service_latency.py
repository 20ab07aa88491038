"""The service from a cold start: seconds from `bentoml serve` to /readyz 200, then the first /analyze against
the tenth, over HTTP.

    python benchmarks/service_latency.py [--requests 10] [--lines 4000] [--mode hybrid] [--idle 0] [--json out.json]

With ``--baseline DIR`` an older checkout is served and asked the same way in the same run. It trains
nothing itself: the model is the simulator-trained one benchmarks/real_faults.py keeps under
.cache/real-faults (trained there on first use), copied into a temporary RCA_HOME. The service runs as the
README says (`bentoml serve` from the repository root, all three services), on a free loopback port, without a
narrator key (offline narrative). Each /analyze carries its own simulated incident (another fault, another seed:
new lines, partly new templates) as log text, with its own issue text, so the first and the tenth request do the
same kind of work. The target: the first request after ready is as fast as the others (first / median of the
rest ≤ 1.5, noise allowed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BENTOML = Path(sys.executable).parent / "bentoml"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def _post(url: str, body: dict) -> tuple[float, dict]:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as r:
        out = json.loads(r.read())
    return time.perf_counter() - t0, out


def serve_and_ask(src: Path, home_src: Path, texts: list[str], issues: list[str], mode: str,
                  tmp: Path, idle_s: float = 0.0) -> dict:
    """Start `bentoml serve` from ``src`` (its bentofile.yaml; PYTHONPATH=src), wait for /readyz, ask each text."""
    home = tmp / "home"
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(home_src, home, ignore=shutil.ignore_patterns("normal-logs"))
    port = _port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "CHROMA_HOST", "ANTHROPIC_API_KEY", "RCA_API_TOKEN", "RCA_CONFIG")}
    env.update(RCA_HOME=str(home), RCA_GRPC_PORT=str(_port()), BENTOML_HOME=str(tmp / "bentoml"),
               HF_HUB_OFFLINE="1", BENTOML_DO_NOT_TRACK="True", RCA_ANALYZE_MODE=mode,
               RCA_ALLOW_ANONYMOUS="1",  # loopback, no token: open on purpose
               MALLOC_ARENA_MAX="2", ARROW_DEFAULT_MEMORY_POOL="system")  # as the image sets them (bentofile.yaml)
    if src != ROOT:
        env["PYTHONPATH"] = str(src)
    log = open(tmp / "serve.log", "w+")
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(BENTOML), "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=src,
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                if _get(base + "/readyz") == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.perf_counter() - t0 > 300:
                log.seek(0)
                raise SystemExit(f"bentoml serve did not become ready:\n{log.read()[-3000:]}")
            time.sleep(0.1)
        ready_s = time.perf_counter() - t0
        time.sleep(idle_s)  # an operator's first question rarely comes the instant a pod is ready
        walls, modes, stages = [], set(), []
        for issue, text in zip(issues, texts):
            wall, rep = _post(base + "/analyze", {"issue": issue, "logs": text, "mode": mode})
            walls.append(wall)
            modes.add(rep["mode"])
            stages.append(rep["timings_ms"])
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    rest = statistics.median(walls[1:])
    return {"serve_to_ready_s": round(ready_s, 2), "first_s": round(walls[0], 3), "rest_median_s": round(rest, 3),
            "tenth_s": round(walls[-1], 3), "first_over_rest_median": round(walls[0] / rest, 2),
            "modes_used": sorted(modes), "timings_ms": stages}


def show(label: str, res: dict, mode: str, lines: int, requests: int) -> None:
    print(f"{label}: bentoml serve -> /readyz 200: {res['serve_to_ready_s']:.1f} s")
    print(f"{label}: /analyze ({mode}, ~{lines} new lines each, over HTTP): first {res['first_s'] * 1000:.0f} ms, "
          f"median of the next {requests - 1} {res['rest_median_s'] * 1000:.0f} ms, last "
          f"{res['tenth_s'] * 1000:.0f} ms; first / median = {res['first_over_rest_median']:.2f} "
          f"({'ok' if res['first_over_rest_median'] <= 1.5 else 'FAIL'}: target ≤ 1.5)")
    stages = res["timings_ms"]
    keys = [k for k in stages[0] if k != "total"]
    print(f"{label}: stages (ms), first request / median of the rest: " + ", ".join(
        f"{k} {stages[0][k]:.0f} / {statistics.median(t.get(k, 0.0) for t in stages[1:]):.0f}" for k in keys))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=10)
    ap.add_argument("--lines", type=int, default=4000)
    ap.add_argument("--mode", default="hybrid", choices=("hybrid", "fast"))
    ap.add_argument("--idle", type=float, default=0.0, help="seconds between ready and the first request")
    ap.add_argument("--baseline", type=Path, help="an older checkout to serve and measure the same way, same run")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from benchmarks import real_faults as rf
    from benchmarks.analyze_latency import issue_texts
    from openstack_rca import simulate

    cfg, _ = rf.trained_model("b", ROOT / ".cache" / "real-faults", [])
    out = {"mode": args.mode, "lines": args.lines, "requests": args.requests, "idle_s": args.idle,
           "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="rca-serve-bench-") as tmp:
        tmp = Path(tmp)
        faults = sorted(f for f in simulate.FAULTS if f != "none")
        texts = []
        for i in range(args.requests):
            d = tmp / f"logs-{i}"
            truth = simulate.simulate(faults[i % len(faults)], d, lines=args.lines, seed=100 + i)
            texts.append("".join((d / f).read_text() for f in truth["files"]))
        issues = issue_texts(None, args.requests, seed=11)
        runs = [("now", ROOT)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
        for label, src in runs:
            out[label] = serve_and_ask(src, cfg.home, texts, issues, args.mode, tmp, args.idle)
            show(label, out[label], args.mode, args.lines, args.requests)
    out["load_avg"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
