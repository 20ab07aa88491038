"""Pod logs read through the Kubernetes API, as in-memory log files for the parser.

OpenStack on Kubernetes (openstack-helm, kolla on k8s) leaves no log files on the operator's machine: each
container's log lives with its kubelet and is read through the API server (``GET /api/v1/namespaces/{ns}/pods/
{pod}/log``) with the official client, from a kubeconfig or, in a pod, its service account. Each container's
current log, and its previous one when it restarted (a crash's error is usually there, not in the fresh
container), becomes one file labelled ``k8s/<namespace>/<pod>/<container>[.previous].log``: the container name
(``nova-compute``, ``neutron-ovs-agent``) names the service as kubelet's own paths do (``parse.services``).

Lines are asked for with ``timestamps=true`` and handed on in kubelet's on-disk CRI layout (``<RFC3339> stdout F
<line>``), which the parser already reads: kubelet's clock then stands in for lines that carry no time of their
own (a bare traceback, a service printing without a date). The API does not say which stream a line came from;
every line is labelled ``stdout``. Every read is bounded: ``sinceSeconds`` and ``tailLines`` when asked, and
``limitBytes`` (``k8s.max_bytes``) always, enforced here too in case a server ignores it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from ..config import K8sConfig
from ..errors import ConfigError, DependencyDown, InvalidInput, RCAError
from ..parse.reader import RawFile, looks_binary

ProgressFn = Callable[[int, int], None]

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
# the API's timestamps=true prefix: RFC3339 (RFC3339Nano in practice), then one space (none on an empty line)
_API_STAMP = re.compile(rb"(?m)^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))(?: |$)")
_READ_BLOCK = 1024 * 1024


def parse_duration(text: str, what: str = "--since") -> int:
    """``"90s"``, ``"30m"``, ``"2h"``, ``"1d"``, ``"1h30m"`` -> seconds."""
    m = _DURATION.fullmatch(text.strip().lower()) if text else None
    if m is None or not any(m.groups()):
        raise InvalidInput(f"{what} must be a duration like 30m, 2h, 1d or 1h30m (got {text!r})")
    d, h, mi, s = (int(g or 0) for g in m.groups())
    seconds = ((d * 24 + h) * 60 + mi) * 60 + s
    if seconds < 1:
        raise InvalidInput(f"{what} must be at least 1s (got {text!r})")
    return seconds


@dataclass(frozen=True)
class PodLogQuery:
    """Which pod logs to read: the CLI's ``--k8s NAMESPACE --selector --since --container --previous --tail``."""

    namespace: str
    selector: str = ""
    """A label selector as kubectl takes it (``application=nova,component=compute``); '' = every pod."""
    since_s: Optional[int] = None
    container: Optional[str] = None
    previous: bool = True
    """Also read the previous container's log of every container that restarted."""
    tail_lines: Optional[int] = None

    def __post_init__(self) -> None:
        if not _DNS_LABEL.fullmatch(self.namespace or ""):
            raise InvalidInput(f"--k8s takes a namespace name (lower-case letters, digits, '-'; got "
                               f"{self.namespace!r}), e.g. --k8s openstack")
        if self.container is not None and not _DNS_LABEL.fullmatch(self.container):
            raise InvalidInput(f"--container takes a container name as in the pod spec (got {self.container!r})")
        if self.since_s is not None and self.since_s < 1:
            raise InvalidInput(f"--since must be at least 1s (got {self.since_s}s)")
        if self.tail_lines is not None and self.tail_lines < 1:
            raise InvalidInput(f"--tail must be >= 1 line (got {self.tail_lines})")
        if len(self.selector) > 1024 or any(c in self.selector for c in "\n\r\x00"):
            raise InvalidInput("--selector must be one line, e.g. application=nova,component=compute")


@dataclass
class PodLogs:
    """What was read: one ``RawFile`` per container log, and a summary for reports."""

    files: list[RawFile] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def warnings(self) -> list[str]:
        """What a report should say about the reading: logs cut at the byte bound, logs that could not be read."""
        out = [f"{label}: cut at k8s.max_bytes (oldest lines kept); pass --since or --tail for the newest"
               for label in self.summary.get("truncated", [])]
        out += [f"{s['log']}: not read ({s['why']})" for s in self.summary.get("skipped", [])]
        return out


def member_label(namespace: str, pod: str, container: str, previous: bool) -> str:
    """``k8s/<namespace>/<pod>/<container>[.previous].log``: the container names the service."""
    return f"k8s/{namespace}/{pod}/{container}{'.previous' if previous else ''}.log"


def to_cri(data: bytes) -> bytes:
    """The API's ``<RFC3339> <line>`` (``timestamps=true``) as kubelet's CRI file layout ``<RFC3339> stdout F
    <line>``, one line for one line; a line without the stamp (a cut last line) is left as it is."""
    return _API_STAMP.sub(rb"\1 stdout F ", data)


# -- connecting -----------------------------------------------------------------------------------------------
def connect(cfg: K8sConfig, kubeconfig: str | None = None, context: str | None = None):
    """A ``CoreV1Api`` on its own client configuration (the process-wide default is left alone).

    In a pod (``KUBERNETES_SERVICE_HOST`` set, no kubeconfig or context asked for) the service account's token;
    else ``kubeconfig`` (default: ``k8s.kubeconfig``, then ``$KUBECONFIG``, then ``~/.kube/config``)."""
    try:
        from kubernetes import client
        from kubernetes import config as kube_config
    except ImportError:
        raise RCAError("reading pod logs needs the Kubernetes client: pip install 'openstack-rca[k8s]'") from None

    kubeconfig = kubeconfig or cfg.kubeconfig or None
    context = context or cfg.context or None
    conf = client.Configuration()
    try:
        if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            kube_config.load_incluster_config(client_configuration=conf)
        else:
            if kubeconfig is not None and not Path(kubeconfig).expanduser().is_file():
                raise InvalidInput(f"kubeconfig not found: {kubeconfig}; pass --kubeconfig FILE or set KUBECONFIG")
            kube_config.load_kube_config(config_file=str(Path(kubeconfig).expanduser()) if kubeconfig else None,
                                         context=context, client_configuration=conf, persist_config=False)
    except kube_config.ConfigException as exc:
        raise ConfigError(f"no usable Kubernetes credentials ({_one_line(exc)}); pass --kubeconfig FILE and "
                          "--context NAME, set KUBECONFIG, or run in a pod with a service account") from None
    conf.retries = 1  # one retry on a dropped connection; an API server that is down is said so at once
    return client.CoreV1Api(client.ApiClient(conf))


def _one_line(exc: object) -> str:
    return " ".join(str(exc).split())[:300]


def _why(exc: BaseException) -> str:
    """Why a connection failed, short: ``[Errno 111] Connection refused``, ``ReadTimeoutError``."""
    inner = getattr(exc, "reason", None)  # urllib3's MaxRetryError wraps the error that ended the retries
    exc = inner if isinstance(inner, BaseException) else exc
    m = re.search(r"\[Errno -?\d+\] [^'\")\]]+", str(exc))
    return m.group(0).strip() if m else type(exc).__name__


def _status_message(exc) -> str:
    """The ``message`` of the k8s ``Status`` object an error carries, else its HTTP reason."""
    try:
        msg = json.loads(exc.body or "").get("message")
    except (ValueError, TypeError, AttributeError):
        msg = None
    return _one_line(msg or exc.reason or f"HTTP {exc.status}")


def _api_error(exc: Exception, host: str, namespace: str, what: str) -> Exception:
    """One library error, saying what to do, for a failed API call."""
    from kubernetes.client.exceptions import ApiException

    if not isinstance(exc, ApiException) or not exc.status:  # no HTTP answer: refused, reset, timed out, TLS
        reason = _status_message(exc) if isinstance(exc, ApiException) else _why(exc)
        return DependencyDown(f"Kubernetes API at {host} unreachable while {what} ({reason}); check the "
                              "cluster, --kubeconfig and --context")
    msg = _status_message(exc)
    if exc.status == 401:
        return InvalidInput(f"Kubernetes API at {host} refused the credentials (401: {msg}); refresh the "
                            "kubeconfig's token or pass --kubeconfig/--context")
    if exc.status == 403:
        return InvalidInput(f"forbidden while {what} ({msg}); grant get/list on pods and get on pods/log in "
                            f"namespace {namespace} (the chart's k8sLogs.namespaces)")
    if exc.status == 404:
        return InvalidInput(f"not found while {what} ({msg}); check the namespace with `kubectl get ns`")
    if exc.status in (400, 422):
        return InvalidInput(f"the Kubernetes API refused the request while {what} ({msg}); check --selector, "
                            "--container and --since")
    return DependencyDown(f"Kubernetes API at {host} failed while {what} (HTTP {exc.status}: {msg}); retry shortly")


def _errors():
    """Exceptions a call can raise that mean "the API did not answer as hoped"."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    return (ApiException, urllib3.exceptions.HTTPError, OSError)


# -- reading ------------------------------------------------------------------------------------------------------
def read_pod_logs(query: PodLogQuery, cfg: K8sConfig, *, kubeconfig: str | None = None, context: str | None = None,
                  progress: ProgressFn | None = None) -> PodLogs:
    """Connect (see ``connect``) and read the logs ``query`` names; see ``fetch``."""
    return fetch(connect(cfg, kubeconfig, context), query, cfg, progress=progress)


def fetch(api, query: PodLogQuery, cfg: K8sConfig, *, progress: ProgressFn | None = None) -> PodLogs:
    """Every matching pod's container logs (current, and previous after a restart), pods by name.

    Raises ``InvalidInput`` when the namespace does not exist, nothing matches, or RBAC forbids it, and
    ``DependencyDown`` when the API does not answer; a single log that cannot be read (a container still
    starting) is skipped and named in the summary."""
    ns = query.namespace
    host = api.api_client.configuration.host
    timeout = (min(cfg.timeout_s, 10.0), cfg.timeout_s)
    errors = _errors()
    where = f"namespace {ns}" + (f" with selector {query.selector!r}" if query.selector else "")
    try:
        pods = api.list_namespaced_pod(ns, label_selector=query.selector or None, _request_timeout=timeout).items
    except errors as exc:
        raise _api_error(exc, host, ns, f"listing pods in {where}") from None
    if not pods:
        raise _nothing_there(api, query, where, timeout, host)

    plan: list[tuple[str, str, bool]] = []  # (pod, container, previous)
    seen_containers: set[str] = set()
    for pod in sorted(pods, key=lambda p: p.metadata.name):
        statuses = {s.name: s for s in (pod.status.container_statuses or [])} if pod.status else {}
        for c in pod.spec.containers:
            seen_containers.add(c.name)
            if query.container is not None and c.name != query.container:
                continue
            st = statuses.get(c.name)
            if query.previous and st is not None and (st.restart_count or 0) > 0:
                plan.append((pod.metadata.name, c.name, True))
            plan.append((pod.metadata.name, c.name, False))
    if not plan:
        raise InvalidInput(f"no container named {query.container!r} in the {len(pods)} pod(s) of {where} "
                           f"(containers: {', '.join(sorted(seen_containers))}); check --container")

    out = PodLogs()
    skipped: list[dict[str, str]] = []
    truncated: list[str] = []
    done = 0
    for i, (pod, container, previous) in enumerate(plan):
        label = member_label(ns, pod, container, previous)
        what = f"reading {label}"
        try:
            resp = api.read_namespaced_pod_log(
                pod, ns, container=container, previous=previous or None, since_seconds=query.since_s,
                tail_lines=query.tail_lines, timestamps=cfg.timestamps or None, limit_bytes=cfg.max_bytes,
                _preload_content=False, _request_timeout=timeout)
            data, cut = _read_bounded(resp, cfg.max_bytes)
        except errors as exc:
            err = _api_error(exc, host, ns, what)
            if isinstance(err, InvalidInput) and getattr(exc, "status", None) in (400, 404):
                skipped.append({"log": label, "why": _status_message(exc)})  # not started yet, or gone meanwhile
                continue
            raise err from None
        text = to_cri(data) if cfg.timestamps else data
        raw = RawFile(path=label, data=text, member=True, digest=hashlib.blake2b(text, digest_size=16).hexdigest())
        raw.binary = looks_binary(raw.data)
        if cut:
            truncated.append(label)
            raw.warnings.append(f"log cut at {cfg.max_bytes:,} bytes (k8s.max_bytes, oldest lines kept); pass "
                                "--since or --tail to read the newest lines instead")
        out.files.append(raw)
        done += len(data)
        if progress:
            progress(done, done + (len(plan) - i - 1) * cfg.max_bytes)
    out.summary = {
        "namespace": ns, "selector": query.selector or None, "since_s": query.since_s, "tail_lines": query.tail_lines,
        "container": query.container, "pods": len({p for p, _c, _v in plan}), "logs": len(out.files),
        "previous": sum(1 for f in out.files if f.path.endswith(".previous.log")), "bytes": done,
        "truncated": truncated, "skipped": skipped,
    }
    if not out.files:
        raise InvalidInput(f"no readable container log in {where}: "
                           + "; ".join(f"{s['log']}: {s['why']}" for s in skipped[:3]))
    return out


def _read_bounded(resp, limit: int) -> tuple[bytes, bool]:
    """The response body, at most ``limit`` bytes; ``cut`` when there was (or may have been) more."""
    chunks, n, ended = [], 0, False
    try:
        while n <= limit:
            block = resp.read(min(_READ_BLOCK, limit + 1 - n))
            if not block:
                ended = True
                break
            chunks.append(block)
            n += len(block)
    finally:
        if ended:
            resp.release_conn()
        else:  # a server that ignored limitBytes: drop the connection rather than read (or reuse) the rest
            resp.close()
    data = b"".join(chunks)
    return data[:limit], len(data) >= limit


def _nothing_there(api, query: PodLogQuery, where: str, timeout, host: str) -> Exception:
    """No pod listed: the API answers an empty list for a namespace that does not exist, so ask which it is
    (reading a namespace needs a ClusterRole this tool does not ask for: forbidden means "no pods")."""
    from kubernetes.client.exceptions import ApiException

    ns = query.namespace
    try:
        api.read_namespace(ns, _request_timeout=timeout)
    except ApiException as exc:
        if exc.status == 404:
            return InvalidInput(f"namespace {ns!r} not found; check it with `kubectl get namespaces`")
        if exc.status != 403:
            return _api_error(exc, host, ns, f"reading namespace {ns}")
    except _errors() as exc:
        return _api_error(exc, host, ns, f"reading namespace {ns}")
    hint = f"kubectl get pods -n {ns}" + (f" -l {query.selector}" if query.selector else "")
    return InvalidInput(f"no pods in {where}; check with `{hint}`")
