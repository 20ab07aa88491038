"""Template ids are stable across runs and processes; the store learns incrementally and survives damage."""

from __future__ import annotations

import json
import subprocess
import sys

from openstack_rca.parse import Parser, TemplateStore, mask, template_id

from .helpers import write

LINES = [
    "2026-11-23 10:00:00.123 4242 INFO nova.compute.manager [-] [instance: 6a4d7c1e-2b3f-4a5d-8e9f-0c1b2a3d4e5f] Took 3.21 seconds to build instance.",
    '2026-11-23 10:00:01.123 4242 INFO nova.osapi_compute.wsgi.server [-] 192.168.10.5,10.0.0.7 "GET /v2.1/servers/detail?all_tenants=1 HTTP/1.1" status: 200 len: 1893 time: 0.2477829',
    "2026-11-23 10:00:02.123 4242 ERROR oslo.messaging._drivers.impl_rabbit [-] AMQP server on 192.168.10.11:5672 is unreachable: [Errno 111] ECONNREFUSED. Trying again in 1 seconds.",
]


def test_masking_keeps_structure_and_masks_variables():
    assert mask("Creating event network-vif-plugged:9f1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d for instance 6a4d7c1e-2b3f-4a5d-8e9f-0c1b2a3d4e5f")[0] == \
        "Creating event network-vif-plugged:<*> for instance <*>"
    assert mask("Final resource view: name=compute-1 phys_ram=64172MB used_ram=512MB pci_stats=[]")[0] == \
        "Final resource view: name=<*> phys_ram=<*> used_ram=<*> pci_stats=[]"
    assert mask("image 0d5c at (/var/lib/nova/instances/_base/a489c868): checking")[0] == "image <*> at (<*>): checking"
    # words are never variables: these are four distinct events
    assert len({mask(f"VM {s} (Lifecycle Event)")[0] for s in ("Paused", "Resumed", "Started", "Stopped")}) == 4
    t, params = mask('10.0.0.1,10.0.0.2 "GET /v2/servers?x=1 HTTP/1.1" status: 404')
    assert t == '<*> "GET <*> HTTP/1.1" status: <*>' and params == ["10.0.0.1,10.0.0.2", "/v2/servers?x=1", "404"]


def test_same_line_same_id_in_another_process(cfg, tmp_path):
    p = write(tmp_path / "nova.log", "\n".join(LINES) + "\n")
    here = Parser(cfg, use_cache=False).parse([p]).table["template_id"].to_pylist()
    code = (
        "import json,sys; from openstack_rca.config import load; from openstack_rca.parse import Parser;"
        f"print(json.dumps(Parser(load(), use_cache=False).parse([{str(p)!r}]).table['template_id'].to_pylist()))"
    )
    other = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                      env={"RCA_HOME": str(tmp_path / "other-home"), "PYTHONHASHSEED": "123",
                                           "PATH": "/usr/bin:/bin"}).stdout)
    assert here == other
    assert here[0] == template_id("[instance: <*>] Took <*> seconds to build instance.")


def test_store_learns_incrementally_and_persists(cfg, tmp_path):
    a = write(tmp_path / "a.log", LINES[0] + "\n" + LINES[0] + "\n")
    b = write(tmp_path / "b.log", LINES[1] + "\n" + LINES[2] + "\n")
    r1 = Parser(cfg, use_cache=False).parse([a])
    assert r1.new_templates == 1
    r2 = Parser(cfg, use_cache=False).parse([a, b])
    assert r2.new_templates == 2
    store = TemplateStore(cfg.templates_path)
    assert len(store) == 3
    tid = template_id("[instance: <*>] Took <*> seconds to build instance.")
    assert store.templates[tid].count == 4  # 2 lines in each of two runs
    assert store.templates[tid].first_seen == "2026-11-23T10:00:00.123"


def test_unseen_line_gets_a_new_id_never_a_crash(cfg, tmp_path):
    Parser(cfg, use_cache=False).parse([write(tmp_path / "a.log", LINES[0] + "\n")])
    store = TemplateStore(cfg.templates_path)
    new = write(tmp_path / "b.log", "2026-11-23 10:00:00.123 4242 INFO nova.compute.manager [-] Something never seen 42\n")
    cfg_frozen = cfg.replace(parse=type(cfg.parse)(learn_templates=False))
    res = Parser(cfg_frozen, use_cache=False).parse([new])
    tid = res.table["template_id"][0].as_py()
    assert tid not in store and res.new_templates == 0
    assert len(TemplateStore(cfg.templates_path)) == 1  # frozen: nothing learned


def test_concurrent_saves_merge(cfg, tmp_path):
    s1, s2 = TemplateStore(cfg.templates_path), TemplateStore(cfg.templates_path)
    s1.learn({"aaa": ("A <*>", 1, None, None)})
    s2.learn({"bbb": ("B <*>", 2, None, None)})
    s1.save()
    s2.save()
    assert set(TemplateStore(cfg.templates_path).templates) == {"aaa", "bbb"}


def test_corrupt_store_is_set_aside(cfg, tmp_path):
    cfg.templates_path.parent.mkdir(parents=True)
    cfg.templates_path.write_text("{not json")
    store = TemplateStore(cfg.templates_path)
    assert len(store) == 0
    assert cfg.templates_path.with_suffix(".corrupt").is_file()
