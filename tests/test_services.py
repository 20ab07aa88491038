"""Service names from the many ways operators name files and units."""

from __future__ import annotations

import pytest

from openstack_rca.parse import services


@pytest.mark.parametrize(
    "path, expect",
    [
        ("/var/log/nova/nova-compute.log", "nova-compute"),
        ("/var/log/nova/nova-compute.log.2.gz", "nova-compute"),
        ("nova-api.log.1.2017-05-16_13:53:08", "nova-api"),
        ("/var/log/neutron/neutron-openvswitch-agent.log-20261123", "neutron-openvswitch-agent"),
        ("/var/log/kolla/nova/nova_compute.log", "nova-compute"),
        ("/var/log/pods/openstack_nova-compute-0_1a2b3c/nova-compute/0.log", "nova-compute"),
        ("/var/log/containers/nova-api-5d8f_openstack_nova-osapi-" + "a" * 64 + ".log", "nova-osapi"),
        ("/var/log/rabbitmq/rabbit@controller.log", "rabbitmq"),
        ("/var/log/mysql/error.log", "mysql"),
        ("/var/log/libvirt/libvirtd.log", "libvirtd"),
        ("/var/log/nova/nova-compute-compute-1.log", "nova-compute"),
        ("/var/log/neutron/neutron-dhcp-agent-net1.log", "neutron-dhcp-agent"),
        ("/tmp/random/0.log", None),
        # a project's folder names the project, the file the service (the fault-injection dataset, packaged installs)
        ("logs/cinder/api.log.gz", "cinder-api"),
        ("logs/cinder/volume.log", "cinder-volume"),
        ("/var/log/neutron/server.log", "neutron-server"),
        ("logs/neutron/dhcp-agent.log.gz", "neutron-dhcp-agent"),
        ("logs/neutron/metering-agent.log", "neutron-metering-agent"),
        ("logs/glance/api.log.gz", "glance-api"),
        ("logs/keystone/keystone.log.gz", "keystone"),
        ("logs/nova/nova-compute.log.gz", "nova-compute"),
        ("logs/nova/nova-compute.log.bzip2.out", "nova-compute"),
        ("/var/log/cinder/0.log", "cinder"),
    ],
)
def test_from_path(path, expect):
    assert services.from_path(path) == expect


@pytest.mark.parametrize(
    "unit, expect",
    [("devstack@n-cpu.service", "nova-compute"), ("devstack@q-svc.service", "neutron-server"),
     ("devstack@c-vol.service", "cinder-volume"), ("nova-conductor.service", "nova-conductor"),
     ("devstack@keystone.service", "keystone")],
)
def test_from_unit(unit, expect):
    assert services.from_unit(unit) == expect


@pytest.mark.parametrize(
    "logger, expect",
    [("nova.compute.manager", "nova-compute"), ("nova.virt.libvirt.driver", "nova-compute"),
     ("nova.osapi_compute.wsgi.server", "nova-api"), ("neutron.agent.dhcp.agent", "neutron-dhcp-agent"),
     ("neutron.plugins.ml2.drivers.openvswitch.agent.ovs_neutron_agent", "neutron-openvswitch-agent"),
     ("neutron.wsgi", "neutron-server"), ("cinder.volume.manager", "cinder-volume"), ("glance.api.v2", "glance-api"),
     ("oslo_messaging._drivers.impl_rabbit", None)],
)
def test_from_logger(logger, expect):
    assert services.from_logger(logger) == expect


def test_resolution_order():
    # the line's own origin beats the file name, which beats the logger
    assert services.resolve("nova-compute", "devstack@n-api.service", "nova.compute.manager") == "nova-api"
    assert services.resolve("nova-compute", None, "nova.scheduler.manager") == "nova-compute"
    assert services.resolve(None, None, "nova.scheduler.manager") == "nova-scheduler"
