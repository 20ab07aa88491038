"""Identifiers and addresses, all drawn from the run's ``random.Random``.

Nothing here touches global randomness or ``uuid4``: the same seed must give byte-identical logs, and a
different seed must give different request ids, ports and timings.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

CONTROLLER = "controller"
CONTROLLER_IP = "192.168.10.11"
"""Runs every API, the schedulers, conductor, DHCP agent, cinder-volume, RabbitMQ and MariaDB."""
CLIENT_IPS = ("192.168.10.5", "192.168.10.6", "192.168.10.7")
"""Where users' CLI and dashboard requests come from (the address nova-api logs)."""
AMQP_PORT = 5672


def compute_ip(index: int) -> str:
    """compute-1 is 192.168.10.21, compute-2 .22, ..."""
    return f"192.168.10.{20 + index}"


def after(t: datetime, seconds: float) -> datetime:
    """``t`` plus a float number of seconds (flows are written as offsets)."""
    return t + timedelta(seconds=seconds)


class Ids:
    """Every id a log line carries: uuids, request ids, MACs, ephemeral ports, Erlang pids."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def hex32(self) -> str:
        """Keystone user/project ids and message ids are dash-less uuids."""
        return uuid.UUID(int=self.rng.getrandbits(128), version=4).hex

    def req(self) -> str:
        return "req-" + self.uuid()

    def mac(self) -> str:
        """Neutron's default base_mac is fa:16:3e:00:00:00."""
        r = self.rng
        return "fa:16:3e:%02x:%02x:%02x" % (r.randrange(256), r.randrange(256), r.randrange(256))

    def port(self) -> int:
        """A client's ephemeral TCP port (Linux default range)."""
        return self.rng.randint(32768, 60999)

    def erl_pid(self) -> str:
        """An Erlang process id as RabbitMQ prints it, e.g. ``<0.4242.0>``."""
        return f"<0.{self.rng.randint(900, 48000)}.0>"

    def pyobj(self) -> str:
        """A CPython object address, e.g. ``0x7f3b2c1d9e50`` (ovsdbapp prints command objects)."""
        return "0x7f%010x" % self.rng.getrandbits(40)
