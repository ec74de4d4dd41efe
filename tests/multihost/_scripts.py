"""Running one of this directory's gevent scripts in an interpreter of its own (gevent's
monkey-patching must come before anything else imports threading)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_script(script: Path, catalog: Path) -> dict[str, object]:
    """Run `script` on the catalog file `catalog` with this checkout first on the path; return
    the JSON object its last line of output prints (the script must exit 0)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    done = subprocess.run(
        [sys.executable, str(script), str(catalog)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    outcome: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return outcome
