"""Load-test the BentoML service end to end: start ``bentoml serve``, run locust headless, stop, report.

    PYTHONPATH=. python loadtests/run.py --rca-home /tmp/loadtest-home --users 12 --duration 60
    PYTHONPATH=. python loadtests/run.py --rca-home /tmp/loadtest-home --users 24 --duration 60 --compare-batching
    PYTHONPATH=. python loadtests/run.py --train --users 8 --duration 30 --json
    PYTHONPATH=. python loadtests/run.py --rca-home /tmp/loadtest-home --users 16 --duration 120   # the soak

Each run: a fresh ``bentoml serve`` (from the repository root, free loopback HTTP and gRPC ports, its own temporary
BENTOML_HOME, ANTHROPIC_API_KEY removed so the narrative is the offline one), ready on ``/readyz``; then
``locust --headless`` on ``loadtests/locustfile.py`` in a subprocess; the stats are measured over exactly
``--duration`` seconds after the ramp-up and ``--warmup`` (setup -- simulating logs, ingesting the corpus -- is not
measured); then the server is stopped and the per-endpoint table printed, parsed from locust's ``_stats.csv``,
with the server's resident memory (``bentoml serve`` and every worker, sampled from /proc every 2 s) at the start
and end of the measured window, its peak and its growth per minute (``loadtests/memory.py``).
``--compare-batching`` runs the same score-only load (ScoreUser only) twice, the server restarted with
RCA_SERVE_BATCHING=1 and then 0, and prints both tables and the on/off ratios.

Exit status: 0 when every request succeeded, 1 when any failed, 2 when the server or locust could not run.
Every child (the server and its workers, locust) runs in its own process group, killed on any exit.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"
BIN = Path(sys.executable).parent
BATCH_ENV = ("RCA_SERVE_BATCHING", "RCA_SERVE_MAX_BATCH_SIZE", "RCA_SERVE_MAX_LATENCY_MS")

_CHILDREN: list[subprocess.Popen] = []


class RunError(Exception):
    """The server or locust could not run (exit status 2)."""


# -- processes -------------------------------------------------------------------------------------------------
def _spawn(cmd: list[str], *, env: dict, log_path: Path, cwd: Path = ROOT) -> subprocess.Popen:
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)  # its own process group: killpg reaches all its children
    log.close()
    _CHILDREN.append(proc)
    return proc


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name: [state, ppid, pgrp, ..., starttime at index 19]."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _descendants(pid: int) -> list[tuple[int, str]]:
    """Every live descendant of ``pid`` as (pid, start time), from /proc. BentoML's workers run in process groups
    of their own, so a killpg on the server's group alone would miss them."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and (st := _stat(int(d.name))):
            children.setdefault(int(st[1]), []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if st := _stat(c):
                out.append((c, st[19]))
            todo.append(c)
    return out


def _alive(member: tuple[int, str]) -> bool:
    """The same process (pid and start time both match, so a reused pid is never touched), not a zombie."""
    st = _stat(member[0])
    return bool(st) and st[19] == member[1] and st[0] != "Z"


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _remember_family(proc: subprocess.Popen) -> None:
    """Record the child's descendants now (e.g. once the server is up): if the child dies first, its orphaned
    workers are no longer its descendants, but still ours to stop."""
    proc.family = set(getattr(proc, "family", set())) | set(_descendants(proc.pid))  # type: ignore[attr-defined]


def _kill(proc: subprocess.Popen, grace: float = 30.0) -> None:
    """SIGTERM the child's process group (a graceful stop: ``bentoml serve`` stops its workers), then SIGKILL
    whatever is left of it and of its descendants after ``grace`` seconds."""
    if proc.poll() is None:
        _remember_family(proc)
    family = set(getattr(proc, "family", set()))
    _signal_group(proc.pid, signal.SIGTERM)
    for member in family:  # orphans of a dead leader do not get the group's signal if they left the group
        if _alive(member) and proc.poll() is not None:
            os.kill(member[0], signal.SIGTERM)
    deadline = time.time() + grace
    while time.time() < deadline:
        if proc.poll() is not None and not any(_alive(m) for m in family):
            break
        time.sleep(0.2)
    _signal_group(proc.pid, signal.SIGKILL)
    for member in family:
        if _alive(member):
            try:
                os.kill(member[0], signal.SIGKILL)
            except ProcessLookupError:
                pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    if proc in _CHILDREN:
        _CHILDREN.remove(proc)


def _kill_all(*_a) -> None:
    for proc in list(_CHILDREN):
        _kill(proc, grace=10.0)


def _on_signal(signum, _frame):
    print(f"interrupted (signal {signum}): stopping the server and locust", file=sys.stderr)
    _kill_all()
    sys.exit(128 + signum)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


# -- the server ------------------------------------------------------------------------------------------------
class Server:
    def __init__(self, rca_home: Path, out: Path, label: str, extra_env: dict[str, str], ready_timeout: float):
        self.port, self.grpc_port = _free_port(), _free_port()
        while self.grpc_port == self.port:
            self.grpc_port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = out / f"serve-{label}.log"
        self.bentoml_home = Path(tempfile.mkdtemp(prefix="rca-lt-bentoml-"))
        env = {**os.environ, "RCA_HOME": str(rca_home), "RCA_GRPC_PORT": str(self.grpc_port),
               "BENTOML_HOME": str(self.bentoml_home), "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
               **extra_env}
        if not env.get("RCA_API_TOKEN"):
            env["RCA_ALLOW_ANONYMOUS"] = "1"  # loopback, no token: open on purpose (locust sends none either)
        env.pop("ANTHROPIC_API_KEY", None)  # the offline narrative: no network, no cost, deterministic
        bentoml = BIN / "bentoml"
        cmd = [str(bentoml)] if bentoml.exists() else [sys.executable, "-m", "bentoml"]
        self.proc = _spawn(cmd + ["serve", "--host", "127.0.0.1", "--port", str(self.port)], env=env,
                           log_path=self.log)
        deadline = time.time() + ready_timeout
        while True:
            try:
                if _get(self.url + "/readyz", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RunError(f"bentoml serve ({label}) did not become ready; its log {self.log}:\n"
                               f"{_tail(self.log)}")
            time.sleep(1)
        _remember_family(self.proc)

    def batch_sizes(self) -> dict | None:
        """The scorer's adaptive-batch histogram (rca_score_batch_size) from /metrics: batches and mean size."""
        try:
            status, text = _get(self.url + "/metrics", timeout=10)
        except OSError:
            return None
        if status != 200:
            return None
        vals = {}
        for name in ("rca_score_batch_size_sum", "rca_score_batch_size_count"):
            m = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M)
            if m:
                vals[name] = float(m.group(1))
        buckets = {m.group(1): float(m.group(2)) for m in
                   re.finditer(r'^rca_score_batch_size_bucket\{le="([^"]+)"[^}]*\} ([0-9.e+]+)$', text, re.M)}
        n = vals.get("rca_score_batch_size_count", 0)
        if not n:
            return {"batches": 0}
        return {"batches": int(n), "documents": int(vals.get("rca_score_batch_size_sum", 0)),
                "mean": round(vals.get("rca_score_batch_size_sum", 0) / n, 2),
                "batches_of_1": int(buckets.get("1.0", 0))}

    def stop(self) -> None:
        self.stopped_at = datetime.now(timezone.utc).replace(microsecond=0)
        _kill(self.proc)
        shutil.rmtree(self.bentoml_home, ignore_errors=True)

    def errors(self) -> list[str]:
        """Lines of the server log that are not access logs of successful requests and look like trouble."""
        bad = re.compile(r"Traceback|\bERROR\b|\bCRITICAL\b|Exception|status=5\d\d|status=4\d\d|Killed|"
                         r"Worker .* exited|timed? ?out", re.I)
        out = []
        stopped = getattr(self, "stopped_at", None)
        for line in _tail(self.log, 50_000_000).splitlines():
            if bad.search(line):
                m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4})", line)
                when = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S%z") if m else None
                tag = "[shutdown] " if stopped and when and when >= stopped else ""
                out.append(tag + line.strip()[:400])
        return out


# -- locust ----------------------------------------------------------------------------------------------------
def run_locust(url: str, out: Path, label: str, *, users: int, spawn_rate: float, duration: int, warmup: int,
               score_only: bool, setup_allowance: int) -> dict:
    prefix = out / label
    report = out / f"{label}-report.json"
    env = {**os.environ, "RCA_LT_MEASURE_S": str(duration), "RCA_LT_WARMUP_S": str(warmup),
           "RCA_LT_REPORT_JSON": str(report), "PYTHONPATH": os.pathsep.join(
               p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    backstop = setup_allowance + int(users / max(spawn_rate, 0.1)) + warmup + duration
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(users),
           "-r", str(spawn_rate), "-t", f"{backstop}s", "--host", url, "--csv", str(prefix), "--only-summary",
           "--exit-code-on-error", "1"] + (["ScoreUser"] if score_only else [])
    log = out / f"{label}-locust.log"
    proc = _spawn(cmd, env=env, log_path=log)
    try:
        rc = proc.wait(timeout=backstop + 120)
    except subprocess.TimeoutExpired:
        raise RunError(f"locust ({label}) did not finish; its log {log}:\n{_tail(log)}") from None
    finally:
        _kill(proc, grace=10)
    stats_csv = Path(f"{prefix}_stats.csv")
    if not stats_csv.exists():
        raise RunError(f"locust ({label}) wrote no stats (exit {rc}); its log {log}:\n{_tail(log)}")
    info = json.loads(report.read_text()) if report.exists() else {}
    window = info.get("window") or [None, None]
    if not window[1]:
        raise RunError(f"locust ({label}) stopped before the measurement window ended (exit {rc}); its log "
                       f"{log}:\n{_tail(log)}")
    measured = window[1] - window[0]
    rows = []
    with open(stats_csv, newline="") as f:
        for r in csv.DictReader(f):
            n = int(r["Request Count"])
            if not n and r["Name"] != "Aggregated":
                continue
            pct = {p: (None if r[f"{p}%"] == "N/A" else int(float(r[f"{p}%"]))) for p in ("50", "95", "99")}
            rows.append({"endpoint": r["Name"] if r["Name"] == "Aggregated" else f"{r['Type']} {r['Name']}",
                         "requests": n, "rps": round(n / measured, 2), "p50_ms": pct["50"], "p95_ms": pct["95"],
                         "p99_ms": pct["99"], "avg_ms": round(float(r["Average Response Time"]), 1),
                         "max_ms": round(float(r["Max Response Time"]), 1), "failures": int(r["Failure Count"])})
    failures: dict[tuple[str, str], int] = {}  # numbers in messages (line counts, sizes) folded into N
    fcsv = Path(f"{prefix}_failures.csv")
    if fcsv.exists():
        with open(fcsv, newline="") as f:
            for r in csv.DictReader(f):
                error = re.sub(r"(?<!HTTP )(?<![\d,.])\d[\d,.]*", "N", r["Error"])[:300]
                key = (f"{r['Method']} {r['Name']}", error)
                failures[key] = failures.get(key, 0) + int(r["Occurrences"])
    fails = [{"endpoint": k[0], "error": k[1], "count": n} for k, n in sorted(failures.items(), key=lambda x: -x[1])]
    return {"label": label, "rows": rows, "failures": fails, "measured_s": round(measured, 1),
            "users": info.get("users"), "user_classes": info.get("user_classes"), "ingest": info.get("ingest"),
            "narrate": info.get("narrate"), "locust_exit": rc, "csv": str(stats_csv), "locust_log": str(log)}


def one_run(args, out: Path, label: str, *, score_only: bool, server_env: dict[str, str]) -> dict:
    from loadtests.memory import Sampler

    srv = Server(args.rca_home, out, label, server_env, args.ready_timeout)
    try:
        family = [srv.proc.pid] + [pid for pid, _ in _descendants(srv.proc.pid)]
        with Sampler(lambda: family, every=2.0) as mem:
            res = run_locust(srv.url, out, label, users=args.users, spawn_rate=args.spawn_rate,
                             duration=args.duration, warmup=args.warmup, score_only=score_only,
                             setup_allowance=args.setup_allowance)
        # the server's resident memory over the measured window only (setup, ramp-up and warm-up excluded)
        res["memory"] = mem.summary(skip_s=max(0.0, mem.samples[-1][0] - args.duration) if mem.samples else 0.0)
        time.sleep(args.drain)  # requests locust abandoned at quit are still queued in the server: let them finish
        res["batches"] = srv.batch_sizes()
    finally:
        srv.stop()
    res["server"] = {"log": str(srv.log), "settings": _effective_batching(server_env)}
    errs = srv.errors()
    res["server"]["error_lines"] = len(errs)
    res["server"]["error_lines_at_shutdown"] = sum(1 for e in errs if e.startswith("[shutdown]"))
    res["server"]["error_sample"] = errs[:10]
    return res


# -- reporting -------------------------------------------------------------------------------------------------
def _effective_batching(server_env: dict[str, str]) -> dict:
    saved = {k: os.environ.get(k) for k in BATCH_ENV}
    try:
        for k in BATCH_ENV:
            if k in server_env:
                os.environ[k] = server_env[k]
        sys.path.insert(0, str(ROOT))
        from bentos.settings import ServeSettings

        s = ServeSettings.from_env()
        return {"batching": s.batching, "max_batch_size": s.max_batch_size, "max_latency_ms": s.max_latency_ms}
    except Exception as exc:  # noqa: BLE001 - reporting only
        return {"unknown": str(exc)}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def machine() -> dict:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    mem = None
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, AttributeError):
        pass
    return {"cpus": os.cpu_count(), "cpus_usable": usable, "cpu_model": model, "memory": mem,
            "os": platform.platform(), "python": platform.python_version()}


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("bentoml", "locust"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _fmt(v, width: int, digits: int = 0) -> str:
    if v is None:
        return "-".rjust(width)
    return (f"{v:,.{digits}f}" if isinstance(v, float) else f"{v:,}").rjust(width)


def table(res: dict) -> str:
    head = f"{'endpoint':<24}{'requests':>10}{'RPS':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'avg ms':>9}" \
           f"{'failures':>10}"
    lines = [head, "-" * len(head)]
    for r in res["rows"]:
        if r["endpoint"] == "Aggregated":
            lines.append("-" * len(head))
        lines.append(f"{r['endpoint']:<24}{_fmt(r['requests'], 10)}{_fmt(float(r['rps']), 9, 2)}"
                     f"{_fmt(r['p50_ms'], 9)}{_fmt(r['p95_ms'], 9)}{_fmt(r['p99_ms'], 9)}"
                     f"{_fmt(float(r['avg_ms']), 9, 1)}{_fmt(r['failures'], 10)}")
    return "\n".join(lines)


def describe(res: dict) -> str:
    s = res["server"]["settings"]
    out = [f"[{res['label']}] measured {res['measured_s']} s; users {res['users']} {res['user_classes']}; "
           f"server batching={s.get('batching')} max_batch_size={s.get('max_batch_size')} "
           f"max_latency_ms={s.get('max_latency_ms')}" + ("" if res.get("narrate") is None or
                                                          not (res.get("user_classes") or {}).get("AnalyzeUser")
                                                          else f"; narrate={res['narrate']} (offline)")]
    if res.get("ingest"):
        i = res["ingest"]
        out.append(f"setup (not measured): ingested corpus {i.get('corpus')!r} ({i.get('fault')}, {i.get('lines')} "
                   f"lines, {i.get('records')} records, indexed={i.get('indexed')}, embedded={i.get('embedded')}) "
                   f"in {i.get('wall_s')} s, timings_ms {i.get('timings_ms')}; first /analyze per mode "
                   f"{i.get('first_analyze')}" + (f" ERROR {i['error']}" if i.get("error") else ""))
    out.append(table(res))
    b = res.get("batches")
    if b and b.get("batches"):
        out.append(f"scorer batches (rca_score_batch_size, whole run incl. ramp-up/warm-up): {b['batches']:,} "
                   f"batches for {b['documents']:,} requests, mean {b['mean']} per batch, "
                   f"{b['batches_of_1']:,} of size 1")
    m = res.get("memory") or {}
    if m.get("samples"):
        out.append(f"server memory (RSS of bentoml serve and its workers, measured window): {m['start_mb']:,.0f} -> "
                   f"{m['end_mb']:,.0f} MB, peak {m['peak_mb']:,.0f} MB, growth {m['growth_mb']:+,.0f} MB "
                   f"({m['growth_mb_per_min']} MB/min, {m['samples']} samples)")
        if len(m.get("by_minute_mb") or []) > 2:
            out.append("  each minute: " + " -> ".join(f"{v:,.0f}" for v in m["by_minute_mb"]) + " MB")
    if res.get("locust_exit"):
        out.append(f"locust exit status {res['locust_exit']} (log {res['locust_log']})")
    for f in res["failures"]:
        out.append(f"FAILURE {f['count']}x {f['endpoint']}: {f['error']}")
    out.append(f"server log {res['server']['log']}: {res['server']['error_lines']} error-looking lines"
               f" ({res['server']['error_lines_at_shutdown']} after SIGTERM)"
               + "".join(f"\n    {line}" for line in res["server"]["error_sample"]))
    return "\n".join(out)


def _row(res: dict, endpoint: str) -> dict:
    return next((r for r in res["rows"] if r["endpoint"] == endpoint), {})


def _ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    home = ap.add_mutually_exclusive_group(required=True)
    home.add_argument("--rca-home", type=Path, help="an RCA_HOME holding a trained model")
    home.add_argument("--train", action="store_true", help="train a model first, in a temporary RCA_HOME (~1 min)")
    ap.add_argument("--users", type=int, default=12, help="concurrent locust users (default 12)")
    ap.add_argument("--spawn-rate", type=float, default=4.0, help="users started per second (default 4)")
    ap.add_argument("--duration", type=int, default=60, help="measured seconds per run (default 60)")
    ap.add_argument("--warmup", type=int, default=5, help="seconds of full load before measuring (default 5)")
    ap.add_argument("--compare-batching", action="store_true",
                    help="score-only load twice: RCA_SERVE_BATCHING=1, then 0; prints both and the ratios")
    ap.add_argument("--out", type=Path, help="where CSVs and logs go (default: a new temp dir, kept)")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of the tables")
    ap.add_argument("--drain", type=float, default=3.0,
                    help="seconds between locust's end and the server's stop, so abandoned requests finish")
    ap.add_argument("--ready-timeout", type=float, default=300.0, help="seconds to wait for /readyz")
    ap.add_argument("--setup-allowance", type=int, default=600,
                    help="seconds allowed for locust's setup (simulate + ingest) before the backstop -t hits")
    args = ap.parse_args(argv)
    if args.users < 1 or args.duration < 1 or args.spawn_rate <= 0:
        ap.error("--users, --duration and --spawn-rate must be positive")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    out = args.out or Path(tempfile.mkdtemp(prefix="rca-loadtest-"))
    out.mkdir(parents=True, exist_ok=True)
    tmp_home = None
    try:
        if args.train:
            tmp_home = Path(tempfile.mkdtemp(prefix="rca-lt-home-"))
            args.rca_home = tmp_home / "home"
            train(args.rca_home, tmp_home / "normal", out)
        args.rca_home = args.rca_home.resolve()
        doc = {"date": datetime.now().astimezone().isoformat(timespec="seconds"), "machine": machine(),
               "versions": _versions(), "users": args.users, "spawn_rate": args.spawn_rate,
               "duration_s": args.duration, "warmup_s": args.warmup, "rca_home": str(args.rca_home),
               "out": str(out), "runs": []}
        if args.compare_batching:
            on = one_run(args, out, "score-batching-on", score_only=True,
                         server_env={**_batch_env(), "RCA_SERVE_BATCHING": "1"})
            doc["runs"].append(on)
            off = one_run(args, out, "score-batching-off", score_only=True,
                          server_env={**_batch_env(), "RCA_SERVE_BATCHING": "0"})
            doc["runs"].append(off)
            a, b = _row(on, "POST /score"), _row(off, "POST /score")
            doc["ratio_on_over_off"] = {"rps": _ratio(a.get("rps"), b.get("rps")),
                                        "p50": _ratio(a.get("p50_ms"), b.get("p50_ms")),
                                        "p95": _ratio(a.get("p95_ms"), b.get("p95_ms")),
                                        "p99": _ratio(a.get("p99_ms"), b.get("p99_ms"))}
        else:
            doc["runs"].append(one_run(args, out, "mixed", score_only=False, server_env=_batch_env()))
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        _kill_all()
        if tmp_home:
            shutil.rmtree(tmp_home, ignore_errors=True)

    failed = sum(r["rows"][-1]["failures"] for r in doc["runs"] if r["rows"])
    doc["failed_requests"] = failed
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(header(doc))
        for r in doc["runs"]:
            print()
            print(describe(r))
        if "ratio_on_over_off" in doc:
            q = doc["ratio_on_over_off"]
            print(f"\nbatching on/off, POST /score: RPS x{q['rps']}, p50 x{q['p50']}, p95 x{q['p95']}, "
                  f"p99 x{q['p99']}  (RPS > 1 and latency < 1 favour batching)")
        print(f"\nCSV and logs: {out}")
    locust_errors = [r["label"] for r in doc["runs"] if r["locust_exit"] not in (0, None)]
    if locust_errors and not args.json:
        print(f"locust exited non-zero in {locust_errors} (failures, or errors in the locustfile: see its log)")
    return 1 if failed or locust_errors else 0


def header(doc: dict) -> str:
    m = doc["machine"]
    v = doc["versions"]
    return (f"date      {doc['date']}\n"
            f"machine   {m['cpus']} CPUs ({m['cpus_usable']} usable), {m['cpu_model']}, {m['memory']} RAM, "
            f"{m['os']}, Python {m['python']}; bentoml {v['bentoml']}, locust {v['locust']}\n"
            f"load      {doc['users']} users, spawn rate {doc['spawn_rate']}/s, {doc['warmup_s']} s warm-up, "
            f"{doc['duration_s']} s measured per run; locust on the same machine as the server")


def _batch_env() -> dict[str, str]:
    return {k: os.environ[k] for k in BATCH_ENV if k in os.environ}


def train(home: Path, logs: Path, out: Path) -> None:
    env = {**os.environ, "RCA_HOME": str(home), "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    rca = BIN / "rca"
    base = [str(rca)] if rca.exists() else [sys.executable, "-m", "openstack_rca"]
    for step in (["simulate", "--fault", "none", "--out", str(logs), "--lines", "12000", "--seed", "1"],
                 ["train", "--logs", str(logs)]):
        log = out / f"train-{step[0]}.log"
        proc = _spawn(base + step, env=env, log_path=log)
        try:
            rc = proc.wait(timeout=1800)
        finally:
            _kill(proc, grace=5)
        if rc != 0:
            raise RunError(f"rca {step[0]} failed (exit {rc}); its log {log}:\n{_tail(log)}")


if __name__ == "__main__":
    sys.exit(main())
