"""The simulator's contract: exact ground truth, parseable formats, determinism, and helpful argument errors."""

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from openstack_rca.errors import InvalidInput
from openstack_rca.simulate import FAULTS, LAYOUTS, simulate

LINES = 800
START = datetime(2026, 11, 23, 9, 0, 0)

MARKERS = {
    "rabbitmq_outage": ("AMQP", "memory resource limit"),
    "db_pool_exhausted": ("QueuePool limit",),
    "neutron_vif_failure": ("ovsdb", "inactivity probe"),
    "compute_disk_full": ("No space left on device",),
    "keystone_auth_failure": ("Authorization failed", '"code": 401'),
    "libvirt_domain_failure": ("qemu",),
    "no_valid_host": ("allocation candidates", "No valid host"),
    "cinder_volume_attach_failure": ("iscsi target",),
    "glance_image_unavailable": ("Get image", "Glance tried all active locations"),
}

CRI = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) F ")
LEVEL = r"(DEBUG|INFO|WARNING|ERROR|CRITICAL)"
FORMATS = {  # name: (header regex, strptime format of the leading timestamp or None, has sub-second precision)
    "oslo": (re.compile(rf"^(\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{{3}}) \d+ {LEVEL} [\w.]+ "), "%Y-%m-%d %H:%M:%S.%f"),
    "rabbit": (re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6})\+00:00 \[(info|warning|error)\] <\d+\.\d+\.\d+> "),
               "%Y-%m-%d %H:%M:%S.%f"),
    "libvirt": (re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\+0000: \d+: (info|warning|error) : \w+:\d+ : "),
                "%Y-%m-%d %H:%M:%S.%f"),
    "mysql": (re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \d+ \[(Note|Warning|ERROR)\] "), "%Y-%m-%d %H:%M:%S"),
    "journal": (re.compile(rf"^([A-Z][a-z]{{2}} [ \d]\d \d\d:\d\d:\d\d) (controller|compute-\d) "
                           rf"devstack@[\w-]+\.service\[\d+\]: {LEVEL} [\w.]+ "), "%Y %b %d %H:%M:%S"),
}
ERROR_TOKENS = re.compile(r"( (ERROR|CRITICAL) [\w.]+ |\[error\]|: error : |\[ERROR\])")


def stamp(line: str) -> tuple[datetime, bool]:
    """The line's own timestamp (inside a CRI wrapper if any) and whether it carries sub-second precision."""
    m = CRI.match(line)
    if m:
        line = line[m.end():]
    for name, (regex, fmt) in FORMATS.items():
        m = regex.match(line)
        if m:
            text = f"{START.year} {m.group(1)}" if name == "journal" else m.group(1)
            return datetime.strptime(text, fmt), "%f" in fmt
    raise AssertionError(f"line matches no known format: {line!r}")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    cache = {}

    def get(fault, layout, seed=0):
        key = (fault, layout, seed)
        if key not in cache:
            out = tmp_path_factory.mktemp(f"{fault}-{layout}-{seed}")
            cache[key] = (out, simulate(fault, out, lines=LINES, seed=seed, layout=layout))
        return cache[key]

    return get


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


CASES = [(f, lay) for f in FAULTS for lay in LAYOUTS]


@pytest.mark.parametrize("fault, layout", CASES)
def test_files_and_counts_match_ground_truth(generated, fault, layout):
    out, gt = generated(fault, layout)
    assert json.loads((out / "ground_truth.json").read_text()) == gt
    on_disk = {rel for rel in read_tree(out) if rel != "ground_truth.json"}
    assert on_disk == set(gt["files"])
    for rel, count in gt["files"].items():
        lines = (out / rel).read_text().splitlines()
        assert lines, rel
        assert len(lines) == count, rel
    assert sum(gt["files"].values()) == gt["lines"]
    assert abs(gt["lines"] - LINES) <= 0.15 * LINES
    assert (gt["fault"], gt["layout"], gt["seed"]) == (fault, layout, 0)
    spec = FAULTS[fault]
    assert (gt["component"], gt["service"], gt["category"]) == (spec.component, spec.service, spec.category)


@pytest.mark.parametrize("fault, layout", CASES)
def test_every_reference_points_at_its_exact_line(generated, fault, layout):
    out, gt = generated(fault, layout)
    refs = gt["root_cause"] + gt["symptoms"]
    for ref in refs:
        lines = (out / ref["file"]).read_text().splitlines()
        assert 1 <= ref["line"] <= len(lines)
        assert lines[ref["line"] - 1] == ref["text"]
    if fault == "none":
        assert gt["root_cause"] == [] and gt["symptoms"] == [] and gt["started_at"] is None
        assert gt["component"] is None and gt["category"] is None
    else:
        assert 1 <= len(gt["root_cause"]) <= 5 and gt["symptoms"]
        assert gt["affected"]["services"]


@pytest.mark.parametrize("fault, layout", CASES)
def test_lines_parse_and_are_time_ordered(generated, fault, layout):
    out, gt = generated(fault, layout)
    first, last = datetime.max, datetime.min
    for rel in gt["files"]:
        previous = datetime.min
        for line in (out / rel).read_text().splitlines():
            if layout == "cri":
                assert CRI.match(line), line
            t, _ = stamp(line)
            assert t >= previous, (rel, line)
            previous = t
            first, last = min(first, t), max(last, t)
    if gt["started_at"] is not None:
        started = datetime.fromisoformat(gt["started_at"])
        assert first <= started <= last
        for ref in gt["root_cause"]:
            t, precise = stamp(ref["text"])
            assert t >= (started if precise else started.replace(microsecond=0)), ref


@pytest.mark.parametrize("fault", [f for f in FAULTS if f != "none"])
def test_root_cause_names_the_fault(generated, fault):
    _, gt = generated(fault, "oslo")
    texts = " ".join(ref["text"] for ref in gt["root_cause"])
    assert any(marker in texts for marker in MARKERS[fault]), texts


def test_marker_table_covers_every_fault():
    assert set(MARKERS) | {"none"} == set(FAULTS)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_normal_traffic_has_no_errors(generated, layout):
    out, gt = generated("none", layout)
    for rel in gt["files"]:
        text = (out / rel).read_text()
        assert not ERROR_TOKENS.search(text), rel
        assert "Traceback" not in text


def test_faults_do_write_errors(generated):
    out, gt = generated("rabbitmq_outage", "oslo")
    assert any(ERROR_TOKENS.search((out / rel).read_text()) for rel in gt["files"])


def test_layout_paths(generated):
    oslo = set(generated("none", "oslo")[1]["files"])
    for path in ("nova/nova-api.log", "nova/nova-scheduler.log", "nova/nova-conductor.log",
                 "neutron/neutron-server.log", "neutron/neutron-dhcp-agent.log", "cinder/cinder-api.log", "cinder/cinder-volume.log",
                 "glance/glance-api.log", "keystone/keystone.log", "placement/placement-api.log",
                 "rabbitmq/rabbit@controller.log", "mysql/error.log", "nova/nova-compute-compute-1.log",
                 "neutron/neutron-openvswitch-agent-compute-1.log", "libvirt/libvirtd-compute-1.log"):
        assert path in oslo
    journald = set(generated("none", "journald")[1]["files"])
    assert "journal/devstack.log" in journald
    assert {p.split("/")[0] for p in journald} == {"journal", "rabbitmq", "mysql", "libvirt"}
    cri = generated("none", "cri")[1]["files"]
    assert all(re.fullmatch(r"pods/openstack_[a-z-]+-\d+_[0-9a-f-]{36}/[a-z-]+/0\.log", p) for p in cri)
    assert sum(cri.values()) == sum(generated("none", "oslo")[1]["files"].values())


@pytest.mark.parametrize("fault, layout", [("rabbitmq_outage", "oslo"), ("libvirt_domain_failure", "cri")])
def test_same_seed_same_bytes_other_seed_differs(tmp_path, fault, layout):
    trees = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        simulate(fault, tmp_path / name, lines=LINES, seed=seed, layout=layout)
        trees.append(read_tree(tmp_path / name))
    assert trees[0] == trees[1]
    assert trees[0] != trees[2]
    assert trees[0]["ground_truth.json"] != trees[2]["ground_truth.json"]


def test_rerun_replaces_previous_output(tmp_path):
    simulate("none", tmp_path, lines=LINES, layout="oslo")
    gt = simulate("none", tmp_path, lines=LINES, layout="journald")
    assert set(read_tree(tmp_path)) == set(gt["files"]) | {"ground_truth.json"}


def test_start_time_is_honoured(tmp_path):
    gt = simulate("keystone_auth_failure", tmp_path, lines=LINES, start=datetime(2025, 1, 2, 3, 4, 5))
    assert gt["started_at"].startswith("2025-01-02T03:")
    first = (tmp_path / "nova" / "nova-api.log").read_text().splitlines()[0]
    assert first.startswith("2025-01-02 03:")


def test_fault_catalogue():
    expected = {
        "rabbitmq_outage": ("messaging", "rabbitmq"), "db_pool_exhausted": ("database", "nova-conductor"),
        "neutron_vif_failure": ("network", "neutron"), "compute_disk_full": ("resource_exhaustion", "nova-compute"),
        "keystone_auth_failure": ("identity", "keystone"), "libvirt_domain_failure": ("compute", "libvirt"),
        "no_valid_host": ("scheduling", "placement"), "cinder_volume_attach_failure": ("storage", "cinder"),
        "glance_image_unavailable": ("image", "glance"),
    }
    for name, (category, component) in expected.items():
        assert (FAULTS[name].category, FAULTS[name].component) == (category, component)
    assert FAULTS["none"].component is None and FAULTS["none"].inject is None
    assert LAYOUTS == ("oslo", "journald", "cri")


@pytest.mark.parametrize("kwargs, needle", [
    ({"fault": "rabbit_down"}, "rabbitmq_outage"),
    ({"layout": "syslog"}, "journald"),
    ({"lines": 199}, ">= 200"),
    ({"lines": "5000"}, ">= 200"),
    ({"lines": True}, ">= 200"),
])
def test_bad_arguments_raise_helpful_errors(tmp_path, kwargs, needle):
    args = {"fault": "none", "out_dir": tmp_path / "out", **kwargs}
    with pytest.raises(InvalidInput, match=re.escape(needle)):
        simulate(**args)
    assert not (tmp_path / "out").exists()


def test_out_dir_that_is_a_file_is_rejected(tmp_path):
    target = tmp_path / "taken"
    target.write_text("x")
    with pytest.raises(InvalidInput, match="is a file"):
        simulate("none", target, lines=LINES)
    assert target.read_text() == "x"
