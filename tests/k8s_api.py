"""A Kubernetes API server on loopback, for tests: the real paths and answers the official client reads pod logs
through, from recorded openstack-helm pods (``tests/data/k8s``). There is no cluster here; this is its stand-in.

It answers, with a bearer token required as a real API server would:
- ``GET /api/v1/namespaces/{ns}/pods?labelSelector=`` a PodList (equality, ``!=`` and existence selectors); for a
  namespace that does not exist an empty list, as the real API does;
- ``GET /api/v1/namespaces/{ns}`` the Namespace, or 404 with a ``Status`` body;
- ``GET /api/v1/namespaces/{ns}/pods/{pod}/log?container=&previous=&sinceSeconds=&tailLines=&limitBytes=
  &timestamps=`` the container's text (400 for a previous log that does not exist, as the kubelet says);
- 403 with a ``Status`` body for every path in a forbidden namespace (RBAC).
Every request's path and query are recorded (``requests``) so tests can check what the client sent.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

DATA = Path(__file__).parent / "data" / "k8s"
TOKEN = "k8s-test-token"
_OSLO_TS = re.compile(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d+))?")


@dataclass
class Pod:
    name: str
    labels: dict[str, str]
    logs: dict[str, str]
    """container -> current log text"""
    previous: dict[str, str] = field(default_factory=dict)
    """container -> the log of its previous (terminated) run"""


def recorded_pods() -> list[Pod]:
    """The openstack-helm pods of ``tests/data/k8s/pods.json``, their logs read from the files next to it."""
    manifest = json.loads((DATA / "pods.json").read_text())["pods"]
    pods = []
    for name, spec in manifest.items():
        folder = DATA / name
        logs = {c: (folder / f"{c}.log").read_text(encoding="utf-8") for c in spec["containers"]}
        prev = {c: (folder / f"{c}.previous.log").read_text(encoding="utf-8")
                for c in spec["containers"] if (folder / f"{c}.previous.log").is_file()}
        pods.append(Pod(name, spec["labels"], logs, prev))
    return pods


def _stamps(text: str) -> list[tuple[datetime, str]]:
    """Each line with the time the kubelet would have stamped it: the line's own oslo time, else the last one."""
    out, last = [], datetime(2018, 6, 29, 2, 6, 30, tzinfo=timezone.utc)  # the pod's start
    for line in text.splitlines():
        m = _OSLO_TS.match(line)
        if m:
            frac = (m.group(3) or "0")[:6].ljust(6, "0")
            last = datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}.{frac}+00:00")
        out.append((last, line))
    return out


def _selects(selector: str, labels: dict[str, str]) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class FakeKubeAPI:
    """``with FakeKubeAPI(pods) as api:`` serves on ``api.url``; ``api.kubeconfig(path)`` writes a kubeconfig."""

    def __init__(self, pods: list[Pod] | None = None, *, namespace: str = "openstack",
                 forbidden: tuple[str, ...] = ("kube-system",), now: datetime | None = None,
                 honour_limit_bytes: bool = True):
        self.pods = recorded_pods() if pods is None else pods
        self.namespace = namespace
        self.forbidden = set(forbidden)
        self.honour_limit_bytes = honour_limit_bytes
        """False: answer whole logs whatever limitBytes says (a server or proxy that ignores it)."""
        stamps = [t for p in self.pods for text in (*p.logs.values(), *p.previous.values()) for t, _ in _stamps(text)]
        # "now" for sinceSeconds: a minute after the newest recorded line
        self.now = now or (max(stamps) + timedelta(minutes=1) if stamps else datetime.now(timezone.utc))
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def __enter__(self) -> "FakeKubeAPI":
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as an API server: the client reuses its connections

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                api._handle(self)

            def log_message(self, *args) -> None:  # quiet: tests read .requests instead
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def kubeconfig(self, path: Path, *, token: str = TOKEN, server: str | None = None) -> Path:
        """A kubeconfig file whose current context points at this server with a bearer token."""
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": server or self.url}}],
            "users": [{"name": "rca", "user": {"token": token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "rca", "namespace": self.namespace}}],
        }))
        return path

    def log_requests(self) -> list[dict[str, list[str]]]:
        return [q for p, q in self.requests if p.endswith("/log")]

    # -- answering ----------------------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        self.requests.append((parts.path, query))
        if h.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._status(h, 401, "Unauthorized", "Unauthorized")
        m = re.fullmatch(r"/api/v1/namespaces/([^/]+)(?:/pods(?:/([^/]+)(/log)?)?)?", parts.path)
        if m is None:
            return self._status(h, 404, "NotFound", "the server could not find the requested resource")
        ns, pod_name, is_log = m.groups()
        is_list = parts.path.endswith("/pods")
        if ns in self.forbidden:
            verb, res = ("list", "pods") if is_list else ("get", "pods/log" if is_log else "pods" if pod_name else
                                                           "namespaces")
            return self._status(h, 403, "Forbidden", f'{res.split("/")[0]} is forbidden: User "system:serviceaccount:'
                                f'openstack-rca:openstack-rca" cannot {verb} resource "{res}" in API group "" in the '
                                f'namespace "{ns}"')
        known = ns == self.namespace
        if is_list:
            selector = query.get("labelSelector", [""])[0]
            items = [self._pod(p) for p in self.pods if _selects(selector, p.labels)] if known else []
            return self._json(h, 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"},
                                       "items": items})
        if not known:
            what = f'pods "{pod_name}"' if pod_name else f'namespaces "{ns}"'
            return self._status(h, 404, "NotFound", f"{what} not found")
        if pod_name is None:
            return self._json(h, 200, {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": ns},
                                       "status": {"phase": "Active"}})
        pod = next((p for p in self.pods if p.name == pod_name), None)
        if pod is None:
            return self._status(h, 404, "NotFound", f'pods "{pod_name}" not found')
        if not is_log:
            return self._json(h, 200, self._pod(pod))
        return self._log(h, pod, query)

    def _log(self, h: BaseHTTPRequestHandler, pod: Pod, q: dict[str, list[str]]) -> None:
        containers = list(pod.logs)
        container = q.get("container", [""])[0] or (containers[0] if len(containers) == 1 else "")
        if not container:
            return self._status(h, 400, "BadRequest", f"a container name must be specified for pod {pod.name}, "
                                f"choose one of: [{' '.join(containers)}]")
        if container not in pod.logs:
            return self._status(h, 400, "BadRequest", f"container {container} is not valid for pod {pod.name}")
        if q.get("previous", ["false"])[0] == "true":
            if container not in pod.previous:
                return self._status(h, 400, "BadRequest", f'previous terminated container "{container}" in pod '
                                    f'"{pod.name}" not found')
            text = pod.previous[container]
        else:
            text = pod.logs[container]
        lines = _stamps(text)
        if "sinceSeconds" in q:
            cut = self.now - timedelta(seconds=int(q["sinceSeconds"][0]))
            lines = [(t, line) for t, line in lines if t >= cut]
        if "tailLines" in q:
            lines = lines[-int(q["tailLines"][0]):] if int(q["tailLines"][0]) else []
        stamped = q.get("timestamps", ["false"])[0] == "true"
        body = "".join((f"{t:%Y-%m-%dT%H:%M:%S.%f}000Z " if stamped else "") + f"{line}\n" for t, line in lines)
        data = body.encode("utf-8")
        if "limitBytes" in q and self.honour_limit_bytes:
            data = data[: int(q["limitBytes"][0])]
        h.send_response(200)
        h.send_header("Content-Type", "text/plain")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _pod(self, p: Pod) -> dict:
        started = "2018-06-29T02:06:30Z"
        statuses = []
        for c in p.logs:
            st = {"name": c, "ready": True, "restartCount": 1 if c in p.previous else 0,
                  "image": f"docker.io/openstackhelm/{c}:2024.1-ubuntu_jammy", "imageID": "",
                  "started": True, "state": {"running": {"startedAt": "2018-06-29T02:10:31Z"}}}
            if c in p.previous:
                st["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": started,
                                                  "finishedAt": "2018-06-29T02:10:30Z"}}
            statuses.append(st)
        return {
            "metadata": {"name": p.name, "namespace": self.namespace, "labels": p.labels,
                         "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, p.name))},
            "spec": {"containers": [{"name": c, "image": f"docker.io/openstackhelm/{c}:2024.1-ubuntu_jammy"}
                                    for c in p.logs], "nodeName": "compute-0"},
            "status": {"phase": "Running", "startTime": started, "containerStatuses": statuses},
        }

    @staticmethod
    def _json(h: BaseHTTPRequestHandler, code: int, obj: dict) -> None:
        data = json.dumps(obj).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _status(self, h: BaseHTTPRequestHandler, code: int, reason: str, message: str) -> None:
        self._json(h, code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                             "message": message, "reason": reason, "code": code})
