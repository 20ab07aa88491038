"""Log bundles as operators get them (sosreport, kolla): .tar, .tar.gz, .tgz, .zip read member by member like a
directory, in memory only; decompression bombs refused; member names that try to leave the archive harmless."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest

from openstack_rca import simulate
from openstack_rca.analyze import Analyzer
from openstack_rca.config import load
from openstack_rca.errors import UntrustedInput
from openstack_rca.parse import Parser, reader

from .helpers import assert_accounted

ISSUE = "new instances on compute-2 fail to boot"


@pytest.fixture(scope="module")
def incident(tmp_path_factory):
    d = tmp_path_factory.mktemp("bundle") / "logs"
    simulate.simulate("neutron_vif_failure", d, lines=3000, seed=3)
    return d


def _files(d: Path) -> list[Path]:
    return [f for f in reader.discover([d])]  # the directory's own order: archives are written in it


def _tar(d: Path, out: Path, mode: str, gz_members: bool = False) -> Path:
    with tarfile.open(out, mode) as tf:
        for f in _files(d):
            name = str(f.relative_to(d))
            if gz_members:
                data = gzip.compress(f.read_bytes())
                info = tarfile.TarInfo(name + ".gz")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.add(f, arcname=name)
    return out


def _zip(d: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in _files(d):
            zf.write(f, str(f.relative_to(d)))
    return out


BUILDERS = {
    "tar": lambda d, o: _tar(d, o / "logs.tar", "w"),
    "tar.gz": lambda d, o: _tar(d, o / "logs.tar.gz", "w:gz"),
    "tgz": lambda d, o: _tar(d, o / "sosreport.tgz", "w:gz"),
    "zip": lambda d, o: _zip(d, o / "logs.zip"),
    "tar-of-gz": lambda d, o: _tar(d, o / "rotated.tar", "w", gz_members=True),
}


def _parse(cfg, *paths):
    res = Parser(cfg, use_cache=False).parse(paths)
    assert_accounted(res)
    return res


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_an_archive_reads_like_its_directory(cfg, incident, tmp_path, kind):
    archive = BUILDERS[kind](incident, tmp_path)
    d, a = _parse(cfg, incident), _parse(cfg, archive)
    assert a.table.drop(["source"]).equals(d.table.drop(["source"]))
    for k in ("lines", "records", "blank", "unparsed", "continuation", "files"):
        assert a.totals[k] == d.totals[k], k
    rel = {os.path.relpath(f.path, incident) for f in d.files}
    labels = {f.path.split("!/", 1)[1].removesuffix(".gz") for f in a.files}
    assert labels == rel and all(f.path.startswith(f"{archive}!/") for f in a.files)
    assert not any("ground_truth" in f.path for f in a.files)


def test_a_cached_archive_gives_the_same_records(cfg, incident, tmp_path):
    archive = BUILDERS["tar.gz"](incident, tmp_path)
    first = Parser(cfg).parse([archive])
    again = Parser(cfg).parse([archive])
    assert {f.status for f in again.files} == {"cached"}
    assert again.table.equals(first.table)


@pytest.fixture(scope="module")
def analyzer(trained):
    cfg, loaded = trained
    return Analyzer(cfg, loaded=loaded)


def _comparable(rep: dict, prefix: str) -> dict:
    rc = rep["root_cause"]
    return {"root": (rc["summary"], rc["confidence"], rc["component"], rc["service"], rc["host"]),
            "evidence": [(e["text"], e["service"], e["host"], e["line_no"], e["role"],
                          os.path.relpath(e["source"].replace("!/", "/"), prefix).removesuffix(".gz"))
                         for e in rep["evidence"]],
            "affected": rep["affected"], "onset": rep["onset"]}


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_an_archive_gets_the_diagnosis_of_its_directory(analyzer, incident, tmp_path, kind):
    archive = BUILDERS[kind](incident, tmp_path)
    d = analyzer.analyze(ISSUE, paths=[str(incident)], mode="fast", narrate=False)
    a = analyzer.analyze(ISSUE, paths=[str(archive)], mode="fast", narrate=False)
    assert _comparable(a, str(archive)) == _comparable(d, str(incident))
    assert a["root_cause"]["confidence"] >= 0.3


# -- bombs ----------------------------------------------------------------------------------------------------

def _zeros_gzip(n: int) -> bytes:
    """``n`` zero bytes gzipped, compressed a block at a time (the zeros never exist all at once)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    out = [z.compress(block) for _ in range(n >> 20)]
    return b"".join(out) + z.flush()


def _tar_with(out: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(out, "w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out


def test_a_gzip_member_bomb_is_refused(cfg, incident, tmp_path):
    bomb = _zeros_gzip(64 << 20)  # 64 MiB of zeros in ~64 KiB: far past the default 200x ratio
    archive = _tar_with(tmp_path / "bundle.tar", {"var/log/nova/nova-compute.log.gz": bomb})
    with pytest.raises(UntrustedInput, match="decompression bomb"):
        Parser(cfg, use_cache=False).parse([archive])


def test_a_zip_bomb_is_refused(cfg, tmp_path):
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("nova/nova-api.log", "w") as fh:
        block = bytes(1 << 20)
        for _ in range(64):
            fh.write(block)
    assert archive.stat().st_size < 1 << 20
    with pytest.raises(UntrustedInput, match="max_compression_ratio"):
        Parser(cfg, use_cache=False).parse([archive])


def test_a_compressed_log_bomb_is_refused_too(cfg, tmp_path):
    f = tmp_path / "nova-compute.log.gz"
    f.write_bytes(_zeros_gzip(64 << 20))
    with pytest.raises(UntrustedInput, match="decompression bomb"):
        Parser(cfg, use_cache=False).parse([f])


def test_the_total_cap_is_configurable(incident, tmp_path, rca_home):
    small = load(env={"RCA_HOME": str(rca_home), "RCA_PARSE_MAX_UNCOMPRESSED_BYTES": str(256 * 1024)})
    assert small.parse.max_uncompressed_bytes == 256 * 1024
    archive = BUILDERS["tar"](incident, tmp_path)  # ~0.9 MB of logs
    with pytest.raises(UntrustedInput, match="more than 262,144 bytes"):
        Parser(small, use_cache=False).parse([archive])
    # a member that declares more than the cap is refused before a byte of it is read
    big = tarfile.TarInfo("nova/nova-compute.log")
    big.size = 3 * 1024**3
    header = tmp_path / "declared.tar"
    header.write_bytes(big.tobuf())  # a header alone: the 3 GB it declares are never there
    with pytest.raises(UntrustedInput, match="decompression bomb"):
        Parser(load(env={"RCA_HOME": str(rca_home)}), use_cache=False).parse([header])


# -- names that try to leave the archive ---------------------------------------------------------------------

LINE = ("2026-11-23 10:00:00.123 4242 ERROR nova.compute.manager [-] Instance failed to spawn: "
        "libvirtError: internal error\n")


@pytest.mark.parametrize("name", ["../../escaped/nova/nova-compute.log", "/tmp/rca-abs-test/nova/nova-compute.log",
                                  "./a/../../nova/nova-compute.log"])
def test_member_names_outside_the_root_are_read_in_memory_only(cfg, tmp_path, name):
    work = tmp_path / "deep" / "er"
    work.mkdir(parents=True)
    archive = _tar_with(work / "bundle.tar", {name: LINE.encode()})
    zarchive = work / "bundle.zip"
    with zipfile.ZipFile(zarchive, "w") as zf:
        zf.writestr(zipfile.ZipInfo(name), LINE)
    before = sorted(p for p in tmp_path.rglob("*"))
    for a in (archive, zarchive):
        res = _parse(cfg, a)
        (f,) = res.files
        assert f.status == "parsed" and f.records == 1
        label = f.path.split("!/", 1)[1]
        assert ".." not in label.split("/") and not label.startswith("/")
        assert any("outside the archive" in w for w in f.warnings)
        assert res.table["service"].to_pylist() == ["nova-compute"]
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing written anywhere
    assert not Path("/tmp/rca-abs-test").exists()


def test_links_and_hidden_members_are_skipped(cfg, tmp_path):
    archive = tmp_path / "bundle.tar"
    with tarfile.open(archive, "w") as tf:
        link = tarfile.TarInfo("nova/nova-api.log")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
        tf.addfile(link)
        for name in (".git/config", "nova/nova-compute.log"):
            info = tarfile.TarInfo(name)
            info.size = len(LINE)
            tf.addfile(info, io.BytesIO(LINE.encode()))
    res = _parse(cfg, archive)
    assert [f.path.split("!/", 1)[1] for f in res.files] == ["nova/nova-compute.log"]


def test_a_truncated_archive_keeps_what_it_read_and_says_so(cfg, incident, tmp_path):
    whole = BUILDERS["tar.gz"](incident, tmp_path).read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    res = _parse(cfg, cut)
    assert res.table.num_rows > 0
    assert res.files[-1].status == "unreadable" and "corrupt or truncated" in res.files[-1].warnings[-1]
