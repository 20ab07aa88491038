"""Pod logs through the Kubernetes API (``rca ingest/analyze --k8s``), against ``tests/k8s_api.py``: a local API
server answering the real paths the official client calls, with recorded openstack-helm pods. There is no
cluster here; the client, its kubeconfig loading and its HTTP are the real ones."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pyarrow.compute as pc
import pytest

pytest.importorskip("kubernetes", reason="the official Kubernetes client (k8s extra) reads pod logs")

from openstack_rca import cli  # noqa: E402
from openstack_rca.config import K8sConfig  # noqa: E402
from openstack_rca.errors import ConfigError, DependencyDown, InvalidInput  # noqa: E402
from openstack_rca.parse import Parser  # noqa: E402
from openstack_rca.sources import k8s  # noqa: E402

from .helpers import assert_accounted  # noqa: E402
from .k8s_api import DATA, FakeKubeAPI, Pod, _stamps  # noqa: E402

NS = "openstack"
COMPUTE = "nova-compute-default-7kx9p"
PLANTED = "TypeError: notify_about_instance_create() takes at least 3 arguments (3 given)"
# the service each recorded openstack-helm container's log lands on
SERVICES = {
    "nova-api-osapi-6c8f9d7b5-x2m4q/nova-osapi": "nova-osapi",  # as kubelet's own paths name it (test_services)
    f"{COMPUTE}/nova-compute": "nova-compute",
    f"{COMPUTE}/nova-compute.previous": "nova-compute",
    f"{COMPUTE}/nova-compute-ssh": "nova-compute",
    "nova-conductor-5d9c8b7f6-qr8tz/nova-conductor": "nova-conductor",
    "neutron-server-7b5f6c9d8-h4k2w/neutron-server": "neutron-server",
    "neutron-ovs-agent-default-9m3bt/neutron-ovs-agent": "neutron-openvswitch-agent",
    "cinder-volume-6f7d8c9b4-t7n5v/cinder-volume": "cinder-volume",
    "glance-api-58c7d9f6b-k3p8z/glance-api": "glance-api",
    "keystone-api-7d6c5b8f9-w2x7r/keystone-api": "keystone",
    "rabbitmq-rabbitmq-0/rabbitmq": "rabbitmq",
    "libvirt-libvirt-default-4hq8d/libvirt": "libvirtd",
}
NOVA = {k for k in SERVICES if k.startswith("nova-")}


def _lines(key: str) -> int:
    return len((DATA / f"{key}.log").read_text(encoding="utf-8").splitlines())


def _label(key: str) -> str:
    return f"k8s/{NS}/{key}.log"


def rca(*args: str, home: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "RCA_HOME": str(home), "RCA_NARRATIVE_ENABLED": "false"}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    return subprocess.run([sys.executable, "-m", "openstack_rca", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


@pytest.fixture
def api(tmp_path):
    with FakeKubeAPI() as server:
        server.kc = str(server.kubeconfig(tmp_path / "kubeconfig"))
        yield server


def _read(api, **query) -> k8s.PodLogs:
    cfg = query.pop("cfg", K8sConfig())
    return k8s.read_pod_logs(k8s.PodLogQuery(NS, **query), cfg, kubeconfig=api.kc)


# -- the source and the parser, in-process -------------------------------------------------------------------
def test_every_pod_log_parsed_every_line_accounted(api, cfg):
    pods = _read(api)
    assert sorted(f.path for f in pods.files) == sorted(_label(k) for k in SERVICES)
    assert pods.summary["pods"] == 10 and pods.summary["previous"] == 1 and not pods.summary["truncated"]
    res = Parser(cfg).parse([], members=pods.files)
    assert_accounted(res)
    by_file = {f.path: f for f in res.files}
    for key, service in SERVICES.items():
        f = by_file[_label(key)]
        assert f.status == "parsed" and f.lines == _lines(key), (key, f)
        t = res.table.filter(pc.equal(res.table["source"], _label(key)))
        assert set(t["service"].to_pylist()) == {service}, key
    assert res.summary()["totals"]["lines"] == sum(_lines(k) for k in SERVICES)
    t = res.table
    # the kubelet's stamp dates lines that carry no time of their own (sshd's); the others keep their own
    ssh = t.filter(pc.equal(t["source"], _label(f"{COMPUTE}/nova-compute-ssh")))
    assert ssh["timestamp"].to_pylist() == ["2018-06-29T02:06:30.000000000Z"] * 2
    assert set(t.filter(pc.equal(t["service"], "rabbitmq"))["layout"].to_pylist()) == {"rabbitmq"}
    # libvirtd's own layout (its version banner, which names no function, stays an unparsed record of it)
    assert t.filter(pc.equal(t["service"], "libvirtd"))["layout"].to_pylist() == ["unparsed", "unparsed", "libvirt"]
    prev = t.filter(pc.equal(t["source"], _label(f"{COMPUTE}/nova-compute.previous")))
    assert PLANTED in prev["exception"].to_pylist()
    assert prev["timestamp"][0].as_py().startswith("2018-06-29T02:10:00.755")  # the line's own (oslo) time


def test_query_is_sent_as_the_api_expects(api, cfg):
    args = cli.build_parser().parse_args([
        "ingest", "--corpus", "x", "--k8s", NS, "--selector", "application=nova,component=compute",
        "--since", "2m", "--container", "nova-compute", "--tail", "20", "--kubeconfig", api.kc])
    pods = cli._pod_logs(args, cfg)
    assert api.requests[0] == (f"/api/v1/namespaces/{NS}/pods",
                               {"labelSelector": ["application=nova,component=compute"]})
    logs = api.log_requests()
    assert [p for p, _ in api.requests[1:]] == [f"/api/v1/namespaces/{NS}/pods/{COMPUTE}/log"] * 2
    base = {"container": ["nova-compute"], "sinceSeconds": ["120"], "tailLines": ["20"], "timestamps": ["true"],
            "limitBytes": [str(cfg.k8s.max_bytes)]}
    assert logs == [{**base, "previous": ["true"]}, base]  # the restarted container's previous run, then its own
    assert [f.path for f in pods.files] == [_label(f"{COMPUTE}/nova-compute.previous"),
                                            _label(f"{COMPUTE}/nova-compute")]
    # the server applied them: the last 20 of the lines from the last 2 minutes
    for f, key in zip(pods.files, (f"{COMPUTE}/nova-compute.previous", f"{COMPUTE}/nova-compute")):
        recent = [t for t, _ in _stamps((DATA / f"{key}.log").read_text()) if t >= api.now - timedelta(minutes=2)]
        assert len(f.data.splitlines()) == min(20, len(recent)), key
    assert 0 < len(pods.files[1].data.splitlines()) < _lines(f"{COMPUTE}/nova-compute")

    api.requests.clear()
    args = cli.build_parser().parse_args(["ingest", "--corpus", "x", "--k8s", NS, "-l", "application=nova",
                                          "--no-previous", "--kubeconfig", api.kc])
    pods = cli._pod_logs(args, cfg)
    assert all("previous" not in q and "sinceSeconds" not in q and "tailLines" not in q for q in api.log_requests())
    assert pods.summary["previous"] == 0 and pods.summary["logs"] == 4


def test_cri_lines_with_partials_are_joined(tmp_path, cfg):
    """Lines already in kubelet's CRI layout (read with timestamps off, from a log shipper's container): a
    kubelet-split long line (``P`` pieces, then ``F``) is one record, and every line is still accounted for."""
    head = "2018-06-29 02:10:27.654 13069 ERROR nova.compute.manager [-] "
    long_msg = "Instance failed to spawn: " + "x" * 40
    cri = (f"2018-06-29T02:10:27.654000000Z stdout F {head}Starting\n"
           f"2018-06-29T02:10:27.700000000Z stderr P {head}{long_msg[:20]}\n"
           f"2018-06-29T02:10:27.700000000Z stderr P {long_msg[20:40]}\n"
           f"2018-06-29T02:10:27.700000000Z stderr F {long_msg[40:]}\n"
           "2018-06-29T02:10:27.800000000Z stdout F \n")
    pod = Pod("shipper-0", {"application": "shipper"}, {"nova-compute": cri})
    with FakeKubeAPI([pod]) as server:
        kc = str(server.kubeconfig(tmp_path / "kc"))
        pods = k8s.read_pod_logs(k8s.PodLogQuery(NS), K8sConfig(timestamps=False), kubeconfig=kc)
    assert "timestamps" not in server.log_requests()[0]
    res = Parser(cfg).parse([], members=pods.files)
    assert_accounted(res)
    f = res.files[0]
    assert (f.lines, f.records, f.blank) == (5, 2, 1)
    assert res.table["message"].to_pylist() == ["Starting", long_msg]
    assert res.table["line_no"].to_pylist() == [1, 2] and res.table["line_end"].to_pylist() == [1, 4]


def test_max_bytes_bounds_each_log_and_says_so(api, cfg):
    pods = _read(api, selector="application=nova", cfg=K8sConfig(max_bytes=4096))
    assert {q["limitBytes"][0] for q in api.log_requests()} == {"4096"}
    tags = len(b" stdout F")  # what to_cri adds to a line
    assert all(len(f.data) <= 4096 + tags * (f.data.count(b"\n") + 1) for f in pods.files)
    cut = pods.summary["truncated"]
    assert _label(f"{COMPUTE}/nova-compute") in cut and _label(f"{COMPUTE}/nova-compute-ssh") not in cut
    assert any(w.startswith(_label(f"{COMPUTE}/nova-compute") + ": cut at k8s.max_bytes") for w in pods.warnings())
    res = Parser(cfg).parse([], members=pods.files)
    assert_accounted(res)
    report = {f.path: f for f in res.files}[_label(f"{COMPUTE}/nova-compute")]
    assert any("--since or --tail" in w for w in report.warnings)


def test_max_bytes_holds_when_the_server_ignores_it(tmp_path, cfg):
    with FakeKubeAPI(honour_limit_bytes=False) as server:
        kc = str(server.kubeconfig(tmp_path / "kc"))
        client = k8s.connect(K8sConfig(), kc)  # one client, one connection pool, for both reads
        pods = k8s.fetch(client, k8s.PodLogQuery(NS, "application=nova"), K8sConfig(max_bytes=4096))
        full = k8s.fetch(client, k8s.PodLogQuery(NS, "application=nova"), K8sConfig())
    compute = _label(f"{COMPUTE}/nova-compute")
    cut = {f.path: f for f in pods.files}[compute]
    assert compute in pods.summary["truncated"]
    assert len(cut.data) <= 4096 + len(b" stdout F") * (cut.data.count(b"\n") + 1)
    whole = {f.path: f for f in full.files}[compute]
    assert len(whole.data.splitlines()) == _lines(f"{COMPUTE}/nova-compute") and not full.summary["truncated"]


def test_library_errors_say_what_to_do(api, tmp_path, monkeypatch):
    with pytest.raises(InvalidInput, match="namespace 'nope' not found"):
        k8s.read_pod_logs(k8s.PodLogQuery("nope"), K8sConfig(), kubeconfig=api.kc)
    with pytest.raises(InvalidInput, match="forbidden.*grant get/list on pods and get on pods/log"):
        k8s.read_pod_logs(k8s.PodLogQuery("kube-system"), K8sConfig(), kubeconfig=api.kc)
    with pytest.raises(InvalidInput, match=r"no pods in namespace openstack with selector 'application=heat'"):
        _read(api, selector="application=heat")
    with pytest.raises(InvalidInput, match="no container named 'nova-api'.*nova-compute-ssh"):
        _read(api, selector="application=nova", container="nova-api")
    with pytest.raises(InvalidInput, match="refused the credentials"):
        k8s.read_pod_logs(k8s.PodLogQuery(NS), K8sConfig(),
                          kubeconfig=str(api.kubeconfig(tmp_path / "bad", token="wrong")))
    with pytest.raises(InvalidInput, match="namespace name"):
        k8s.PodLogQuery("Open_Stack")
    with pytest.raises(InvalidInput, match="duration like"):
        k8s.parse_duration("two hours")
    assert k8s.parse_duration("1h30m") == 5400 and k8s.parse_duration("1d") == 86400
    # in a pod without a mounted service account: the credentials, not a trace
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    with pytest.raises(ConfigError, match="no usable Kubernetes credentials.*service account"):
        k8s.connect(K8sConfig())
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    down = api.kubeconfig(tmp_path / "down", server=f"http://127.0.0.1:{port}")
    with pytest.raises(DependencyDown, match=f"Kubernetes API at http://127.0.0.1:{port} unreachable.*refused"):
        k8s.read_pod_logs(k8s.PodLogQuery(NS), K8sConfig(timeout_s=3), kubeconfig=str(down))
    with socket.socket() as hung:  # accepts connections (the kernel's backlog) and never answers
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        stuck = api.kubeconfig(tmp_path / "hung", server=f"http://127.0.0.1:{hung.getsockname()[1]}")
        with pytest.raises(DependencyDown, match="unreachable while listing pods.*Timeout"):
            k8s.read_pod_logs(k8s.PodLogQuery(NS), K8sConfig(timeout_s=1), kubeconfig=str(stuck))


def test_bounds_come_from_the_one_config(api, tmp_path):
    from openstack_rca.config import load

    cfg = load(env={"RCA_HOME": str(tmp_path), "RCA_K8S_MAX_BYTES": "2048", "RCA_K8S_TIMESTAMPS": "false",
                    "RCA_K8S_KUBECONFIG": api.kc})
    args = cli.build_parser().parse_args(["analyze", "--issue", "x", "--k8s", NS, "-l", "application=keystone"])
    pods = cli._pod_logs(args, cfg)  # no --kubeconfig: k8s.kubeconfig from the environment
    assert api.log_requests() == [{"container": ["keystone-api"], "limitBytes": ["2048"]}]
    assert len(pods.files[0].data) == 2048 and not pods.files[0].data.startswith(b"2018-06-29T")
    with pytest.raises(ConfigError, match="k8s.max_bytes must be >= 1024"):
        load(env={"RCA_HOME": str(tmp_path), "RCA_K8S_MAX_BYTES": "10"})


# -- the CLI, as an operator runs it --------------------------------------------------------------------------
def _one_line_error(res: subprocess.CompletedProcess, code: int, needle: str) -> None:
    assert res.returncode == code, (res.returncode, res.stderr[-2000:])
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rca: error: "), res.stderr[-2000:]
    assert needle in lines[0] and "Traceback" not in res.stderr, lines[0]


@pytest.mark.parametrize("args, code, needle", [
    (["--k8s", "nope"], 2, "namespace 'nope' not found"),
    (["--k8s", "kube-system"], 2, "grant get/list on pods and get on pods/log in namespace kube-system"),
    (["--k8s", NS, "--selector", "application=heat"], 2, "no pods in namespace openstack"),
    (["--k8s", NS, "--since", "yesterday"], 2, "--since must be a duration like 30m"),
    (["--since", "2h", "/tmp"], 2, "--since: for pod logs only; add --k8s NAMESPACE"),
    (["--k8s", NS, "--kubeconfig", "/nonexistent/kubeconfig"], 2, "kubeconfig not found"),
    (["--k8s", NS, "DOWN"], 1, "unreachable"),
])
def test_cli_errors_are_one_line(api, tmp_path, args, code, needle):
    if "DOWN" in args:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        args = [a for a in args if a != "DOWN"] + [
            "--kubeconfig", str(api.kubeconfig(tmp_path / "down", server=f"http://127.0.0.1:{port}"))]
    elif "--kubeconfig" not in args and "--k8s" in args:
        args = [*args, "--kubeconfig", api.kc]
    _one_line_error(rca("ingest", "--corpus", "k8s", *args, home=tmp_path / "home"), code, needle)
    if "--k8s" in args and "--since" not in args:  # analyze takes the same source options and says the same
        _one_line_error(rca("analyze", "--issue", "boot fails", *args, home=tmp_path / "home"), code, needle)


def test_cli_ingest_pod_logs(api, trained):
    cfg, _ = trained
    res = rca("ingest", "--k8s", NS, "--selector", "application=nova", "--corpus", "k8s-nova", "--no-index",
              "--kubeconfig", api.kc, "--json", home=cfg.home)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    assert out["k8s"]["namespace"] == NS and out["k8s"]["selector"] == "application=nova"
    assert (out["k8s"]["pods"], out["k8s"]["logs"], out["k8s"]["previous"]) == (3, 5, 1)
    assert sorted(out["files"]) == sorted(_label(k) for k in NOVA)
    totals = out["input"]
    assert totals["lines"] == sum(_lines(k) for k in NOVA) and totals["files_parsed"] == 5
    assert totals["records"] > 0 and totals["unparsed"] == 2  # sshd's two lines: kept, not in a known layout

    from openstack_rca import corpus

    table = corpus.load(cfg, "k8s-nova").table
    span = sum(e - s + 1 for s, e in zip(table["line_no"].to_pylist(), table["line_end"].to_pylist()))
    assert span + totals["blank"] == totals["lines"]  # every line in exactly one record, or blank
    got = {(src, svc) for src, svc in zip(table["source"].to_pylist(), table["service"].to_pylist())}
    assert got == {(_label(k), SERVICES[k]) for k in NOVA}


def test_cli_analyze_finds_the_error_in_the_previous_container(api, trained):
    cfg, _ = trained
    res = rca("analyze", "--k8s", NS, "-l", "application=nova", "--kubeconfig", api.kc, "--fast-mode",
              "--no-narrative", "--json", "--issue",
              "the new instance never becomes ACTIVE; openstack server add volume fails", home=cfg.home)
    assert res.returncode == 0, res.stderr[-3000:]
    rep = json.loads(res.stdout)
    assert rep["source"]["k8s"]["previous"] == 1
    assert rep["source"]["input"]["lines"] == sum(_lines(k) for k in NOVA)
    prev = _label(f"{COMPUTE}/nova-compute.previous")
    hits = [ev for ev in rep["evidence"] if ev.get("source") == prev and PLANTED in json.dumps(ev)]
    assert hits, json.dumps(rep["evidence"], indent=1)[:4000]
    first = rep["evidence"].index(hits[0])
    assert first < 3, [(ev.get("source"), ev.get("message", "")[:80]) for ev in rep["evidence"]]
