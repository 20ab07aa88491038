"""How each API service writes one request: the access-line formats differ per project, so they live in one place.

* nova-api / neutron-server: oslo.service wsgi_log_format ``<ip> "<request line>" status: N len: N time: N``;
* glance-api: eventlet's ``<ip> - - [dd/Mon/YYYY HH:MM:SS] "<request line>" status len seconds``;
* placement: ``placement.requestlog`` with the microversion;
* cinder-api: ``cinder.api.openstack.wsgi`` logs the URL, then ``<url> returned with HTTP N``;
* keystone: only the flask request logger, at DEBUG.
"""

from __future__ import annotations

from datetime import datetime

from .events import Ctx, Event, Sink
from .ids import CONTROLLER, CONTROLLER_IP, after
from .world import Project, World

KEYSTONE_REQ = "keystone.server.flask.request_processing.req_logging"


def user_ctx(w: World, p: Project, *, global_req: str | None = None, req: str | None = None) -> Ctx:
    return Ctx(req or w.ids.req(), global_req, p.user_id, p.id, p.user_name, p.name)


def service_ctx(w: World, name: str, *, global_req: str | None = None) -> Ctx:
    return user_ctx(w, w.service_users[name], global_req=global_req)


def bare_ctx(w: World) -> Ctx:
    """Periodic tasks and event handlers: a fresh request id, no user."""
    return Ctx(w.ids.req())


def nova_api(s: Sink, w: World, t: datetime, ctx: Ctx, client: str, method: str, path: str, status: int,
             length: int, took: float, *, role: str | None = None) -> Event:
    """The access line is written when the response is sent: ``t`` is the end of the request."""
    line = f'{client} "{method} {path} HTTP/1.1" status: {status} len: {length} time: {took:.7f}'
    return s.emit(t, "nova-api", CONTROLLER, "INFO", "nova.osapi_compute.wsgi.server", ctx, line, role=role)


def neutron_api(s: Sink, w: World, t: datetime, ctx: Ctx, client: str, method: str, path: str, status: int,
                length: int, took: float | None = None) -> Event:
    took = w.rng.uniform(0.02, 0.18) if took is None else took
    line = f'{client} "{method} {path} HTTP/1.1" status: {status} len: {length} time: {took:.7f}'
    return s.emit(t, "neutron-server", CONTROLLER, "INFO", "neutron.wsgi", ctx, line)


def glance_api(s: Sink, w: World, t: datetime, ctx: Ctx, client: str, method: str, path: str, status: int,
               length: int, took: float | None = None) -> Event:
    took = w.rng.uniform(0.01, 0.09) if took is None else took
    stamp = f"{t:%d/%b/%Y %H:%M:%S}"
    line = f'{client} - - [{stamp}] "{method} {path} HTTP/1.1" {status} {length} {took:.6f}'
    return s.emit(t, "glance-api", CONTROLLER, "INFO", "eventlet.wsgi.server", ctx, line)


def placement_api(s: Sink, w: World, t: datetime, ctx: Ctx, client: str, method: str, path: str, status: int,
                  length: int, microversion: str = "1.36") -> Event:
    line = f'{client} "{method} {path}" status: {status} len: {length} microversion: {microversion}'
    return s.emit(t, "placement-api", CONTROLLER, "INFO", "placement.requestlog", ctx, line)


def cinder_api(s: Sink, w: World, t: datetime, ctx: Ctx, method: str, path: str, status: int,
               took: float | None = None, *, role: str | None = None) -> datetime:
    """Two lines, request and response; returns the response time."""
    url = f"http://{CONTROLLER_IP}:8776{path}"
    s.emit(t, "cinder-api", CONTROLLER, "INFO", "cinder.api.openstack.wsgi", ctx, f"{method} {url}")
    end = after(t, w.rng.uniform(0.03, 0.4) if took is None else took)
    level = "ERROR" if status >= 500 else "INFO"
    s.emit(end, "cinder-api", CONTROLLER, level, "cinder.api.openstack.wsgi", ctx,
           f"{url} returned with HTTP {status}", role=role)
    return end


def keystone_request(s: Sink, w: World, t: datetime, ctx: Ctx, method: str, path: str) -> None:
    """keystone (flask) logs each request at DEBUG: the method, then the path."""
    s.emit(t, "keystone", CONTROLLER, "DEBUG", KEYSTONE_REQ, ctx, f"REQUEST_METHOD: `{method}`")
    s.emit(after(t, 0.0004), "keystone", CONTROLLER, "DEBUG", KEYSTONE_REQ, ctx, f"PATH_INFO: `{path}`")


def token_validation(s: Sink, w: World, t: datetime, service: str = "nova") -> None:
    """keystonemiddleware in ``service`` validating a user token (cached, so only some requests do this)."""
    keystone_request(s, w, t, service_ctx(w, service), "GET", "/v3/auth/tokens")
