"""Corpora in S3, so every replica of the service answers for every corpus (``RCA_CORPUS_STORE=s3://bucket/prefix``).

The same contract as the local store, built on S3's conditional writes instead of rename and flock:

* ``<prefix>/<name>/v-<id>/…`` immutable versions (records, scores, vectors, meta), uploaded whole before anything
  points at them;
* ``<prefix>/<name>/CURRENT``, the published version's id and the one before it, replaced by compare-and-swap
  (``If-Match`` on the ETag read under the lock, ``If-None-Match: *`` for a new corpus): a reader sees the old
  version or the new one, never a half-uploaded one, and a writer whose lease was lost cannot publish;
* ``<prefix>/<name>/.lock``, a lease (``If-None-Match: *``) naming its owner and expiry: writers of one name across
  all replicas are serialised; a writer killed mid-ingest blocks the name for at most ``lease_s``.

A killed writer leaves an unreferenced version; versions that are neither current nor previous are deleted once
older than ``grace_s`` (a reader may still be reading one). S3 errors are DependencyDown (HTTP 503, retry).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq

from ..corpus import FILES, Corpus, Vectors, load_vectors, open_current, stamp_meta, write_version
from ..errors import DependencyDown, InvalidInput, RCAError, StoreBusy
from ..retrieve.index import collection_name
from .local import CURRENT, _VERSION, _new_id

log = logging.getLogger(__name__)
LOCK = ".lock"


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _status(exc: Exception) -> int:
    return int(getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _missing(exc: Exception) -> bool:
    return _code(exc) in ("NoSuchKey", "404", "NotFound") or _status(exc) == 404


def _conflict(exc: Exception) -> bool:
    """A conditional write lost: 412, or 409 when S3 saw two conditional writes of the key at once."""
    return _code(exc) in ("PreconditionFailed", "ConditionalRequestConflict") or _status(exc) in (409, 412)


def parse_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix without slashes)."""
    u = urlparse(url)
    if u.scheme != "s3" or not u.netloc:
        raise InvalidInput(f"corpus store {url!r}: use s3://BUCKET/PREFIX (or unset RCA_CORPUS_STORE for the local "
                           "store under RCA_HOME)")
    return u.netloc, u.path.strip("/")


class S3CorpusStore:
    def __init__(self, url: str, *, lock_timeout_s: float = 5.0, grace_s: float = 60.0, lease_s: float = 900.0,
                 client=None):
        self.bucket, self.prefix = parse_url(url)
        self.lock_timeout_s, self.grace_s, self.lease_s = lock_timeout_s, grace_s, lease_s
        self.skipped: list[dict[str, str]] = []
        if client is None:
            import boto3  # honours AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, IRSA and the usual credential chain
            from botocore.config import Config

            client = boto3.client("s3", config=Config(retries={"max_attempts": 3, "mode": "standard"},
                                                      connect_timeout=5, read_timeout=60))
        self.s3 = client

    # -- keys ------------------------------------------------------------------------------------------------
    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def _name(self, name: str) -> str:
        collection_name(name)  # validates the name
        return name

    @contextlib.contextmanager
    def _s3(self, what: str) -> Iterator[None]:
        """Any S3 failure -> DependencyDown, naming the corpus, never the bucket's credentials."""
        try:
            yield
        except RCAError:
            raise
        except Exception as exc:  # noqa: BLE001 - botocore's errors: the code is what an operator needs
            raise DependencyDown(f"S3 unavailable while {what} ({_code(exc) or type(exc).__name__})") from None

    def _get(self, key: str) -> tuple[bytes, str] | None:
        try:
            r = self.s3.get_object(Bucket=self.bucket, Key=key)
        except Exception as exc:  # noqa: BLE001
            if _missing(exc):
                return None
            raise
        return r["Body"].read(), r["ETag"]

    # -- readers ---------------------------------------------------------------------------------------------
    def _pointer(self, name: str) -> tuple[list[str], str | None]:
        got = self._get(self._key(name, CURRENT))
        if got is None:
            return [], None
        ids = [i for i in got[0].decode("utf-8", "replace").split() if _VERSION.fullmatch(i)]
        return ids, got[1]

    def current(self, name: str) -> str | None:
        with self._s3(f"reading corpus {name!r}"):
            return (self._pointer(self._name(name))[0] or [None])[0]

    def open(self, name: str) -> Corpus:
        self._name(name)
        with self._s3(f"reading corpus {name!r}"):  # S3's own failures: DependencyDown
            return open_current(self, name, lambda vid: self._read(name, vid), (ValueError, pa.ArrowException))

    def _read(self, name: str, vid: str) -> Corpus:
        blobs: dict[str, bytes] = {}
        for f in FILES:
            got = self._get(self._key(name, vid, f))
            if got is None:
                if f in ("records.parquet", "meta.json"):
                    raise FileNotFoundError(f)
                continue
            blobs[f] = got[0]
        meta = json.loads(blobs["meta.json"])
        table = pq.read_table(pa.BufferReader(blobs["records.parquet"]))
        scores = pq.read_table(pa.BufferReader(blobs["scores.parquet"])) if "scores.parquet" in blobs else None
        vectors = None
        if "vectors.parquet" in blobs:
            with tempfile.TemporaryDirectory() as d:
                Path(d, "vectors.parquet").write_bytes(blobs["vectors.parquet"])
                vectors = load_vectors(Path(d), required=True)
        return Corpus(name, table, scores, meta, vectors, vid)

    def _names(self) -> list[str]:
        names, token = [], None
        base = self._key("") + "/" if self.prefix else ""
        while True:
            kw = {"Bucket": self.bucket, "Prefix": base, "Delimiter": "/"}
            if token:
                kw["ContinuationToken"] = token
            r = self.s3.list_objects_v2(**kw)
            names += [p["Prefix"][len(base):].rstrip("/") for p in r.get("CommonPrefixes", [])]
            if not r.get("IsTruncated"):
                return sorted(names)
            token = r["NextContinuationToken"]

    def list(self) -> list[dict[str, Any]]:
        rows, self.skipped = [], []
        with self._s3("listing corpora"):
            for name in self._names():
                try:
                    self._name(name)
                except ValueError:
                    continue
                ids, _ = self._pointer(name)
                if not ids:
                    continue  # a corpus being written for the first time, or deleted
                got = self._get(self._key(name, ids[0], "meta.json"))
                try:
                    if got is None:
                        raise FileNotFoundError("meta.json")
                    meta = json.loads(got[0])
                    if not isinstance(meta, dict) or "name" not in meta:
                        raise ValueError("not a corpus description")
                    rows.append(meta)
                except (FileNotFoundError, ValueError) as exc:
                    why = ("its current version is missing" if isinstance(exc, FileNotFoundError)
                           else f"meta.json is unreadable ({type(exc).__name__})")
                    log.warning("corpus %r left out of the listing: %s; ingest it again", name, why)
                    self.skipped.append({"name": name, "error": why})
        return rows

    # -- the lease -------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _lease(self, name: str, timeout_s: float) -> Iterator[None]:
        key = self._key(name, LOCK)
        me = {"owner": f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"}
        deadline = time.monotonic() + timeout_s
        etag = None
        with self._s3(f"locking corpus {name!r}"):
            while etag is None:
                body = json.dumps({**me, "expires": time.time() + self.lease_s}).encode()
                try:
                    etag = self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*")["ETag"]
                    break
                except Exception as exc:  # noqa: BLE001
                    if not _conflict(exc):
                        raise
                held = self._get(key)
                if held is not None:
                    try:
                        expired = float(json.loads(held[0]).get("expires", 0)) < time.time()
                    except ValueError:
                        expired = True
                    if expired:  # its writer died: take the lease over, unless another writer just did
                        try:
                            etag = self.s3.put_object(Bucket=self.bucket, Key=key, Body=body,
                                                      IfMatch=held[1])["ETag"]
                            log.warning("corpus %r: took over an expired writer lease", name)
                            break
                        except Exception as exc:  # noqa: BLE001
                            if not (_conflict(exc) or _missing(exc)):
                                raise
                if time.monotonic() >= deadline:
                    raise StoreBusy(f"corpus {name!r} is being written by another request; retry shortly")
                time.sleep(0.1)
        try:
            yield
        finally:
            try:
                self.s3.delete_object(Bucket=self.bucket, Key=key, IfMatch=etag)
            except Exception as exc:  # noqa: BLE001 - lost to a takeover, or S3 down: the lease expires anyway
                log.debug("corpus %r: lease not released (%s)", name, _code(exc) or type(exc).__name__)

    # -- writers ---------------------------------------------------------------------------------------------
    def publish(self, name: str, table: pa.Table, scores: pa.Table, meta: dict[str, Any],
                vectors: Vectors | None = None) -> str:
        with self.writer(name) as w:
            return w.publish(table, scores, meta, vectors)

    @contextlib.contextmanager
    def writer(self, name: str) -> Iterator["_Writer"]:
        with self._lease(self._name(name), self.lock_timeout_s):
            yield _Writer(self, name)

    def _upload_and_point(self, name: str, files: dict[str, bytes], copies: dict[str, str],
                          expect: str | None = None) -> str | None:
        """Upload a version (``copies``: file -> the version to copy it from, server-side), then swap CURRENT
        from what it is now to it. The caller holds the lease."""
        ids, etag = self._pointer(name)
        if expect is not None and ids[:1] != [expect]:
            return None
        vid = _new_id()
        for f, body in files.items():
            self.s3.put_object(Bucket=self.bucket, Key=self._key(name, vid, f), Body=body)
        for f, src in copies.items():
            self.s3.copy_object(Bucket=self.bucket, Key=self._key(name, vid, f),
                                CopySource={"Bucket": self.bucket, "Key": self._key(name, src, f)})
        pointer = ("\n".join([vid, *ids[:1]]) + "\n").encode()
        cond = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            self.s3.put_object(Bucket=self.bucket, Key=self._key(name, CURRENT), Body=pointer, **cond)
        except Exception as exc:  # noqa: BLE001
            if _conflict(exc):  # our lease expired and another writer published: it wins
                self._delete_version(name, vid)
                raise StoreBusy(f"corpus {name!r} was published by another writer meanwhile; retry") from None
            raise
        self._collect(name)
        return vid

    def rescore(self, base: Corpus, scores: pa.Table, **meta: Any) -> Corpus | None:
        new_meta = stamp_meta(base.name, base.table, {**base.meta, **meta})
        files = _serialise(None, scores, new_meta, None)
        copies = {f: base.version for f in ("records.parquet", "vectors.parquet")
                  if f != "vectors.parquet" or base.vectors is not None}
        with self._lease(self._name(base.name), 0.0), self._s3(f"writing corpus {base.name!r}"):
            vid = self._upload_and_point(base.name, files, copies, expect=base.version)
        return None if vid is None else Corpus(base.name, base.table, scores, new_meta, base.vectors, vid)

    def delete(self, name: str) -> None:
        with self.writer(name), self._s3(f"deleting corpus {name!r}"):
            self.s3.delete_object(Bucket=self.bucket, Key=self._key(name, CURRENT))  # gone for readers at once
            for key, _ in self._objects(name):
                if not key.endswith("/" + LOCK):
                    self.s3.delete_object(Bucket=self.bucket, Key=key)

    # -- housekeeping ----------------------------------------------------------------------------------------
    def _objects(self, name: str) -> Iterator[tuple[str, float]]:
        token = None
        while True:
            kw = {"Bucket": self.bucket, "Prefix": self._key(name) + "/"}
            if token:
                kw["ContinuationToken"] = token
            r = self.s3.list_objects_v2(**kw)
            for o in r.get("Contents", []):
                yield o["Key"], o["LastModified"].timestamp()
            if not r.get("IsTruncated"):
                return
            token = r["NextContinuationToken"]

    def _delete_version(self, name: str, vid: str) -> None:
        for f in FILES:
            self.s3.delete_object(Bucket=self.bucket, Key=self._key(name, vid, f))

    def _collect(self, name: str) -> int:
        """Delete versions nobody can hold: not current, not previous, written over grace_s ago (a killed
        writer's unpublished upload included). The caller holds the lease."""
        keep = set(self._pointer(name)[0][:2])
        cutoff = time.time() - self.grace_s
        base = self._key(name) + "/"
        newest: dict[str, float] = {}
        for key, modified in self._objects(name):
            vid = key[len(base):].split("/", 1)[0]
            if _VERSION.fullmatch(vid) and vid not in keep:
                newest[vid] = max(newest.get(vid, 0.0), modified)
        old = [v for v, t in newest.items() if t <= cutoff]
        for vid in old:
            self._delete_version(name, vid)
        return len(old)

    def cleanup(self) -> dict[str, int]:
        out = {"removed": 0, "busy": 0}
        with self._s3("sweeping corpora"):
            for name in self._names():
                try:
                    self._name(name)
                    with self._lease(name, 0.0):
                        out["removed"] += self._collect(name)
                except ValueError:
                    continue
                except StoreBusy:
                    out["busy"] += 1
        return out


def _serialise(table: pa.Table | None, scores: pa.Table, meta: dict[str, Any],
               vectors: Vectors | None) -> dict[str, bytes]:
    """A version's files as bytes, written by the one writer every store uses."""
    with tempfile.TemporaryDirectory(prefix="rca-s3-") as d:
        write_version(Path(d), table, scores, meta, vectors)
        return {p.name: p.read_bytes() for p in Path(d).iterdir()}


class _Writer:
    def __init__(self, store: S3CorpusStore, name: str):
        self.store, self.name = store, name

    def publish(self, table: pa.Table, scores: pa.Table, meta: dict[str, Any], vectors: Vectors | None = None) -> str:
        files = _serialise(table, scores, stamp_meta(self.name, table, meta), vectors)
        with self.store._s3(f"writing corpus {self.name!r}"):
            vid = self.store._upload_and_point(self.name, files, {})
        assert vid is not None
        return vid

