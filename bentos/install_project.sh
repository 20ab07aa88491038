#!/usr/bin/env bash
# The Bento's docker.setup_script (bentofile.yaml, bentofile.train.yaml): gives the image the `rca` command (the
# retrain CronJob runs `rca train`; operators `kubectl exec ... rca models promote`).
#
# BentoML 1.4 runs this once the pinned requirements are in the image's venv but before it copies the Bento's
# src/ in, so the project cannot be pip-installed from src/ here. Instead the venv learns src/ the way an editable
# install does: a .pth line puts $BENTO_PATH/src on every interpreter's path, and `rca` is the usual console
# script. The service (`bentoml serve` from src/) and `rca` run the same files.
set -euo pipefail
src="${BENTO_PATH:?BENTO_PATH is set by the Bento image}/src"
python="$(command -v python3)"
site="$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
bin="$(dirname "$python")"
echo "$src" > "$site/openstack_rca_src.pth"
cat > "$bin/rca" <<PY
#!$python
import sys
from openstack_rca.cli import main
sys.exit(main())
PY
chmod 0755 "$bin/rca"
echo "rca -> $src (via $site/openstack_rca_src.pth)"
