"""Small pieces of the engine: timestamps, the issue's time and words, categories, citations, the embedder."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from openstack_rca.diagnose.categories import CATEGORIES, classify
from openstack_rca.diagnose.issue import parse_issue
from openstack_rca.diagnose.lexical import stem
from openstack_rca.parse.timestamps import iso, to_epoch
from openstack_rca.errors import InvalidInput
from openstack_rca.narrate.citations import check
from openstack_rca.retrieve.index import collection_name


def test_timestamps_become_utc_epochs():
    ts = pa.array(["2026-11-23T09:39:34.306854+00:00", "2026-11-23T09:39:34.306+0000", "2026-11-23T10:39:34.306+01:00",
                   "2026-11-23 09:39:34,306", None, "not a time"])
    e = to_epoch(ts)
    assert np.allclose(e[:4], e[0], atol=1e-3)
    assert np.isnan(e[4]) and np.isnan(e[5])
    assert iso(e[0]) == "2026-11-23T09:39:34.306Z" and iso(float("nan")) is None


@pytest.mark.parametrize("text, clock, date", [
    ("instances fail to boot since 14:00", (14, 0, 0), None),
    ("volume attach hangs at 9pm", (21, 0, 0), None),
    ("VMs won't start after 2026-11-23 09:30 UTC", (9, 30, 0), "2026-11-23"),
    ("instances fail to boot", None, None),
    ("flavor m1.small has 2 vcpus", None, None),
])
def test_issue_times(text, clock, date):
    issue = parse_issue(text)
    assert issue.clock == clock and issue.date == date


def test_issue_time_is_the_latest_such_time_not_after_the_logs():
    ref = pa.array(["2026-11-23T01:00:00"])
    end = float(to_epoch(ref)[0])
    since = parse_issue("errors since 23:00").since(end)
    assert iso(since) == "2026-11-22T23:00:00.000Z"  # yesterday evening, not tomorrow
    assert iso(parse_issue("errors since 00:30").since(end)) == "2026-11-23T00:30:00.000Z"


def test_issue_words_become_log_concepts_and_generic_words_do_not():
    issue = parse_issue("VMs fail to boot and volume attach is broken")
    words = {w for c in issue.concepts for w in c}
    assert {"spawn", "instance", "volume", "attach"} <= words
    assert not words & {"fail", "broken", "and", "is"}
    assert parse_issue("the printer is out of toner").terms == ""


def test_stemmer_joins_forms():
    assert stem("services") == stem("service") and stem("reporting") == stem("report")
    assert stem("instances") == stem("instance")


@pytest.mark.parametrize("service, component, message, expected", [
    ("nova-compute", "nova.compute.manager", "Instance failed to spawn: OSError: [Errno 28] No space left on device",
     ("nova-compute", "resource_exhaustion")),
    ("nova-conductor", "oslo_messaging.rpc.server",
     "Exception during message handling: sqlalchemy.exc.TimeoutError: QueuePool limit of size 5", (
         "nova-conductor", "database")),
    ("rabbitmq", "rabbitmq", "vm_memory_high_watermark set. Memory used:1 allowed:2", ("rabbitmq", "messaging")),
    ("nova-conductor", "oslo.messaging._drivers.impl_rabbit", "AMQP server on 10.0.0.1:5672 is unreachable",
     ("rabbitmq", "messaging")),
    ("libvirtd", "qemuMonitorIO", "internal error: End of file from qemu monitor", ("libvirt", "compute")),
    ("nova-scheduler", "nova.scheduler.manager", "Got no allocation candidates from the Placement API",
     ("placement", "scheduling")),
    ("cinder-volume", "cinder.volume.targets.tgt", "Failed to create iscsi target for Volume ID: x",
     ("cinder", "storage")),
    ("glance-api", "glance.location", "Get image x data failed: image not found", ("glance", "image")),
    ("keystone", "keystone.server.flask.application", "Authorization failed. The request you have made requires "
     "authentication.", ("keystone", "identity")),
    ("neutron-openvswitch-agent", "ovsdbapp.backend.ovs_idl.vlog",
     "tcp:127.0.0.1:6640: no response to inactivity probe after 5 seconds", ("neutron", "network")),
    ("my-app", None, "hello", ("my-app", None)),
])
def test_categories(service, component, message, expected):
    assert classify(service, component, message) == expected
    assert expected[1] is None or expected[1] in CATEGORIES


def test_citations_keep_known_ids_and_drop_invented_ones():
    c = check("RabbitMQ ran out of memory [E1], then RPC timed out [E2][E9]. See [E3, E1] and [E10].",
              {"E1", "E2", "E3"})
    assert c.citations == ["E1", "E2", "E3"] and c.invalid == ["E9", "E10"]
    assert "[E9]" not in c.text and "[E10]" not in c.text and "[E3][E1]" in c.text


@pytest.mark.parametrize("name", ["", "a b", "-x", "x" * 200, "../etc"])
def test_bad_corpus_names(name):
    with pytest.raises(InvalidInput):
        collection_name(name)
