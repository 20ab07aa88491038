"""Follow a failing request across services: request ids, instance ids and resource UUIDs link records.

nova-api hands its request id to the conductor, the scheduler and the compute host; a compute host that calls
cinder or neutron shows up there under the same id or the instance's, volume's or port's UUID. The chain of a
record is every record that shares one of those with it; the root cause of a symptom is the earliest error on
its chain, not the loudest error in the logs.

What an API request did is read from its access line (``"POST /v2.1/…/servers HTTP/1.1" status: 500``,
cinder's ``POST http://…/v3/…/volumes`` and ``… returned with HTTP 500``): the method and resource become the
operation's words (create server, delete network, attach volume), so an issue about one operation is not
answered with a failure of another.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

UUID = re.compile(r"(?<![\w-])(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?![\w-])", re.I)
COMMON = 0.2  # a key on more than this share of records links everything and nothing
MAX_RESOURCES = 8

_ACCESS = re.compile(
    r"(?:\"?(?P<method>GET|POST|PUT|DELETE|PATCH|HEAD) )?(?P<path>(?:https?://[^/\s]+)?/[^\s\"?]*)(?:\?[^\s\"]*)?"
    r"(?: HTTP/1\.[01]\"?(?: status:)? (?P<status>\d{3})| returned with HTTP (?P<returned>\d{3}))")
# cinder's first access line: the method and full URL, no status yet
_CALL = re.compile(r"(?P<method>GET|POST|PUT|DELETE|PATCH|HEAD) (?P<path>https?://[^/\s]+/[^\s\"?]*)(?:\?\S*)?\s*$"
                   r"(?P<status>)(?P<returned>)")
_ID_SEGMENT = re.compile(r"^(?:v\d+(?:\.\d+)?|[0-9a-f-]{32,36}|\d+|detail|action|<\*>|)$", re.I)
# resource segment -> the words the operation is known by (method decides the verb)
_NOUNS = {
    "servers": "server instance", "volumes": "volume", "networks": "network", "ports": "port network",
    "subnets": "subnet network", "routers": "router network", "floatingips": "floatingip network",
    "security-groups": "security_group network", "images": "image", "snapshots": "snapshot",
    "os-volume_attachments": "volume attachment", "attachments": "volume attachment",
    "os-interface": "interface port network", "flavors": "flavor", "os-keypairs": "keypair", "tokens": "token",
    "types": "volume_type", "backups": "backup",
}
_VERBS = {"GET": "get list show", "POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete",
          "HEAD": "get"}
_ATTACH = {"os-volume_attachments", "attachments", "os-interface"}


@lru_cache(maxsize=8192)
def operation(message: str) -> str | None:
    """The operation an API access line records, as words (``create server instance 500``); None otherwise."""
    m = _ACCESS.search(message) or _CALL.search(message)
    if m is None:
        return None
    segs = [s for s in m.group("path").split("?")[0].split("/") if s]
    if segs and segs[0].startswith("http"):
        segs = segs[2:]  # scheme and host of cinder's full URLs
    names = [s for s in segs if not _ID_SEGMENT.match(s) and not re.fullmatch(r"[0-9a-f]{32}", s)]
    if not names:
        return None
    noun = names[-1]
    method = m.group("method") or ""
    verb = _VERBS.get(method, "")
    if noun not in _NOUNS:
        verb = ""  # a call on something else (external events, flavors, services): no operation an operator names
    elif noun in _ATTACH:
        verb = {"POST": "attach", "DELETE": "detach"}.get(method, verb)
    elif method == "POST" and segs[-1] == "action":
        verb = "action"  # the verb is in the body (os-attach, os-reserve, reboot): unknown here
    status = m.group("status") or m.group("returned") or ""
    words = f"{verb} {_NOUNS.get(noun, noun.replace('os-', '').replace('-', ' '))} api http {status}"
    return " ".join(words.split())


class _Column:
    """A dictionary-encoded column: ``col[row]`` is the value or None."""

    def __init__(self, codes: np.ndarray, keys: list):
        self.codes, self.keys = codes, keys

    def __getitem__(self, row: int):
        c = self.codes[int(row)]
        return self.keys[c] if c >= 0 else None


class _Groups:
    """Rows per key, sliced on demand from one sort (most keys are never asked for); keys on too many rows none."""

    def __init__(self, keys: list, srt: np.ndarray, bounds: np.ndarray, limit: float):
        self._index = {k: i for i, k in enumerate(keys)}
        self._srt, self._bounds, self._limit = srt, bounds, limit

    def get(self, key, default=None):
        i = self._index.get(key)
        if i is None or self._bounds[i + 1] - self._bounds[i] > self._limit:
            return default
        return self._srt[self._bounds[i]:self._bounds[i + 1]]

    def __contains__(self, key) -> bool:
        return self.get(key) is not None

    def __getitem__(self, key):
        hit = self.get(key)
        if hit is None:
            raise KeyError(key)
        return hit


class Links:
    """Row indexes grouped by request id, global request id and instance id, for fast chain lookups."""

    def __init__(self, table: pa.Table):
        self.n = table.num_rows
        self._messages = table["message"]
        self._groups: dict[str, _Groups] = {}
        self._values: dict[str, list] = {}
        for col in ("request_id", "global_request_id", "instance_id"):
            enc = pc.dictionary_encode(table[col].combine_chunks())
            codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
            keys = enc.dictionary.to_pylist()
            rows = np.flatnonzero(codes >= 0)
            srt = rows[np.argsort(codes[rows], kind="stable")]
            bounds = np.searchsorted(codes[srt], np.arange(len(keys) + 1))
            self._groups[col] = _Groups(keys, srt, bounds, max(COMMON * self.n, 50))
            self._values[col] = _Column(codes, keys)

    def ids(self, row: int) -> dict[str, str | None]:
        return {col: vals[row] for col, vals in self._values.items()}

    def origin_rows(self, row: int) -> np.ndarray:
        """Rows logged under the request the row's work began with (its global request id, else its own): where
        the operator's API call is, not the calls services made to each other on its behalf."""
        key = self._values["global_request_id"][row] or self._values["request_id"][row]
        hit = self._groups["request_id"].get(key) if key else None
        return hit if hit is not None else np.array([row])

    def request_rows(self, row: int) -> np.ndarray:
        """Rows of the row's own request: its request id, as request or global request id, and its global id."""
        got = []
        for col in ("request_id", "global_request_id"):
            key = self._values[col][row]
            if key:
                for target in ("request_id", "global_request_id"):
                    hit = self._groups[target].get(key)
                    if hit is not None:
                        got.append(hit)
        return np.unique(np.concatenate(got)) if got else np.array([row])

    def chain(self, row: int, message: str | None = None) -> np.ndarray:
        """Rows linked to ``row``: its request, its instance, the resources its message names, and the requests
        of all of those (one hop)."""
        own = self.request_rows(row)
        parts = [own]
        inst = self._values["instance_id"][row]
        if inst and inst in self._groups["instance_id"]:
            parts.append(self._groups["instance_id"][inst])
        # the resources the request named: its own text, and the paths of its API calls (volumes/<id>/action)
        texts = [message or ""] + [m for m in pc.take(self._messages, pa.array(own)).to_pylist() if m and "/" in m]
        uuids = [u for t in texts for u in UUID.findall(t)]
        for uuid in list(dict.fromkeys(uuids))[:MAX_RESOURCES]:
            if uuid == inst:
                continue
            hit = np.flatnonzero(pc.match_substring(self._messages, uuid).to_numpy(zero_copy_only=False))
            if 0 < len(hit) <= max(COMMON * self.n, 50):
                parts.append(hit)
        first = np.unique(np.concatenate(parts))
        reqs = {self._values["request_id"][r] for r in first} - {None}
        more = [self._groups["request_id"][q] for q in reqs if q in self._groups["request_id"]]
        return np.unique(np.concatenate([first, *more])) if more else first

    def linked(self, a: int, b: int) -> bool | None:
        """Whether two records share a request or instance; None when either carries no id at all."""
        ia, ib = self.ids(a), self.ids(b)
        if not any(ia.values()) or not any(ib.values()):
            return None
        ra = {ia["request_id"], ia["global_request_id"]} - {None}
        rb = {ib["request_id"], ib["global_request_id"]} - {None}
        if ra & rb:
            return True
        return bool(ia["instance_id"] and ia["instance_id"] == ib["instance_id"])
