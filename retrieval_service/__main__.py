"""``python -m retrieval_service``: Chroma for the RCA service, token-protected when CHROMA_TOKEN is set.

    python -m retrieval_service --path /data/chroma --host 0.0.0.0 --port 8000

Without CHROMA_TOKEN, ``chroma run`` listens on --host/--port itself. With it, Chroma listens on 127.0.0.1 only
(--internal-port) and the token proxy takes --host/--port. Exits when Chroma exits, and stops Chroma on SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .auth_proxy import TokenProxy


def _chroma_exe() -> str:
    here = Path(sys.executable).parent / "chroma"
    return str(here) if here.exists() else (shutil.which("chroma") or "chroma")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m retrieval_service", description=__doc__.splitlines()[0])
    ap.add_argument("--path", default=os.environ.get("CHROMA_PERSIST_PATH", "./chroma-data"))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--internal-port", type=int, default=8010, help="Chroma's own port when the proxy is in front")
    args = ap.parse_args(argv)
    token = os.environ.get("CHROMA_TOKEN", "")
    host, port = ("127.0.0.1", args.internal_port) if token else (args.host, args.port)
    proc = subprocess.Popen([_chroma_exe(), "run", "--path", args.path, "--host", host, "--port", str(port)])

    def stop(*_):
        proc.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    proxy = None
    if token:
        deadline = time.time() + 60
        while proc.poll() is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).read()
                break
            except OSError:
                if time.time() > deadline:
                    proc.terminate()
                    sys.stderr.write("retrieval_service: chroma did not start within 60 s\n")
                    return 1
                time.sleep(0.3)
        proxy = TokenProxy(token, port)
        proxy.start(args.host, args.port)
        sys.stderr.write(f"retrieval_service: Chroma on {args.host}:{args.port} (token required)\n")
    rc = proc.wait()
    if proxy:
        proxy.stop()
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
