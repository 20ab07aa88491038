"""The cloud being simulated: hosts, tenants, images, networks, instances, and every process id.

Flows run in time order against this state, so a delete only ever targets an instance that exists, resource
audits report the RAM the instances really use, and a fault can find the guests running on its host.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from .ids import CONTROLLER, CONTROLLER_IP, Ids, compute_ip


@dataclass(frozen=True)
class Flavor:
    name: str
    ram: int  # MB
    vcpus: int
    disk: int  # GB


FLAVORS = (
    Flavor("m1.tiny", 512, 1, 1),
    Flavor("m1.small", 2048, 1, 20),
    Flavor("m1.medium", 4096, 2, 40),
    Flavor("m1.large", 8192, 4, 80),
    Flavor("m1.xlarge", 16384, 8, 160),
)
FLAVOR = {f.name: f for f in FLAVORS}
RESERVED_RAM = 512


@dataclass(frozen=True)
class Project:
    """A keystone project with the one user who works in it (service users live in project ``service``)."""

    id: str
    name: str
    user_id: str
    user_name: str


@dataclass
class Image:
    id: str
    name: str
    size: int  # bytes

    @property
    def base(self) -> str:
        """nova names the cached base file after the sha1 of the image id."""
        return "/var/lib/nova/instances/_base/" + hashlib.sha1(self.id.encode()).hexdigest()


@dataclass
class Network:
    id: str
    name: str
    seg: int
    subnet: str
    prefix: str  # "10.0.0."
    sg: str
    next_ip: int = 10


@dataclass
class Host:
    name: str
    ip: str
    phys_ram: int
    vcpus: int
    disk: int
    local_vlans: dict[str, int] = field(default_factory=dict)
    cached_images: set[str] = field(default_factory=set)


@dataclass
class Instance:
    uuid: str
    domain: str
    project: Project
    flavor: Flavor
    image: Image
    network: Network
    port: str
    mac: str
    ip: str
    host: str | None = None
    state: str = "building"  # building, active, error, stopped, paused
    volumes: list[str] = field(default_factory=list)
    dom_id: int = 0


@dataclass
class Volume:
    id: str
    size: int
    project: Project
    instance: str | None = None


SERVICE_NAMES = ("nova", "neutron", "cinder", "glance", "placement")
TENANTS = (("admin", "admin"), ("demo", "demo"), ("alt_demo", "alt_demo"), ("web-prod", "svc-web"),
           ("ci-runners", "jenkins"), ("data-lab", "analyst"))
IMAGES = (("cirros-0.6.2-x86_64-disk", 21430272), ("ubuntu-22.04-server-cloudimg-amd64", 661913600),
          ("rocky-9-genericcloud-x86_64", 1006632960), ("debian-12-genericcloud-amd64", 386009088))


class World:
    """Mutable state of the cloud plus the fixed facts (pids, addresses) every renderer needs."""

    def __init__(self, rng: random.Random, ids: Ids, n_hosts: int, seed: int) -> None:
        self.rng = rng
        self.seed = seed
        self.ids = ids
        self.hosts = [
            Host(f"compute-{i}", compute_ip(i), rng.choice((48127, 64213, 64215)), rng.choice((16, 24, 32)),
                 rng.choice((491, 893, 1787)))
            for i in range(1, n_hosts + 1)
        ]
        self.host = {h.name: h for h in self.hosts}
        service = ids.hex32()
        self.service_users = {n: Project(service, "service", ids.hex32(), n) for n in SERVICE_NAMES}
        self.projects = [Project(ids.hex32(), p, ids.hex32(), u) for p, u in TENANTS]
        self.admin = self.projects[0]
        self.images = [Image(ids.uuid(), n, s) for n, s in IMAGES]
        self.networks = [Network(ids.uuid(), "private", rng.randint(1001, 1100), ids.uuid(), "10.0.0.", ids.uuid()),
                         Network(ids.uuid(), "shared", rng.randint(1101, 1200), ids.uuid(), "10.0.1.", ids.uuid())]
        self.instances: dict[str, Instance] = {}
        self.volumes: dict[str, Volume] = {}
        self._domain = rng.randint(0x20, 0x90)
        self.erl = {"alarm": ids.erl_pid(), "boot": ids.erl_pid(), "listener": ids.erl_pid()}
        self.mysql_thread = rng.randint(1000, 9000)
        self.libvirt_tids = {h.name: [rng.randint(1100, 9800) for _ in range(3)] for h in self.hosts}
        self.agent_ctx: dict[str, str] = {}
        self.broken_image: str | None = None
        """An image whose data is gone (glance fault): users stop picking it once they notice."""

    # --- processes -----------------------------------------------------------------------------------------

    def pid(self, service: str, host: str) -> int:
        """Stable per process and independent of render order, so every layout shows the same pids."""
        return random.Random(f"{self.seed}/{service}/{host}").randint(1200, 48000)

    def agent_req(self, service: str, host: str) -> str:
        """Long-running agents log every loop iteration with the one context they created at start."""
        key = f"{service}@{host}"
        if key not in self.agent_ctx:
            self.agent_ctx[key] = self.ids.req()
        return self.agent_ctx[key]

    def service_ip(self, host: str) -> str:
        return CONTROLLER_IP if host == CONTROLLER else self.host[host].ip

    # --- instances -----------------------------------------------------------------------------------------

    def new_instance(self, project: Project, flavor: Flavor | None = None, image: Image | None = None) -> Instance:
        rng = self.rng
        flavor = flavor or rng.choices(FLAVORS[:4], weights=(2, 6, 4, 1))[0]
        if image is None:
            usable = [i for i in self.images if i.id != self.broken_image]
            image = rng.choices(usable, weights=[(5, 4, 2, 2)[k] if k < 4 else 1 for k in range(len(usable))])[0]
        net = rng.choice(self.networks)
        net.next_ip = 10 + (net.next_ip - 9) % 240
        self._domain += 1
        inst = Instance(self.ids.uuid(), f"instance-{self._domain:08x}", project, flavor, image, net,
                        self.ids.uuid(), self.ids.mac(), f"{net.prefix}{net.next_ip}")
        self.instances[inst.uuid] = inst
        return inst

    def on_host(self, host: str, states: tuple[str, ...] = ("active",)) -> list[Instance]:
        return [i for i in self.instances.values() if i.host == host and i.state in states]

    def usage(self, host: str) -> tuple[int, int, int]:
        """(used_ram MB incl. reserved, used_disk GB, used_vcpus) of everything placed on ``host``."""
        placed = [i for i in self.instances.values() if i.host == host and i.state != "error"]
        return (RESERVED_RAM + sum(i.flavor.ram for i in placed), sum(i.flavor.disk for i in placed),
                sum(i.flavor.vcpus for i in placed))

    def free_ram(self, host: str) -> int:
        return self.host[host].phys_ram - self.usage(host)[0]

    def seed_instances(self) -> None:
        """Guests already running when the log window opens (55-70% of each host's RAM, like a busy cloud)."""
        for h in self.hosts:
            target = h.phys_ram * self.rng.uniform(0.55, 0.7)
            while self.usage(h.name)[0] < target:
                inst = self.new_instance(self.rng.choice(self.projects))
                inst.host, inst.state, inst.dom_id = h.name, "active", self.rng.randint(1, 40)
                h.cached_images.add(inst.image.id)
                h.local_vlans.setdefault(inst.network.id, len(h.local_vlans) + 1)
