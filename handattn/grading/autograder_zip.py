"""The Gradescope autograder zip: setup.sh, run_autograder, the config and a wheel of handattn.

Gradescope unpacks the zip into /autograder/source, runs setup.sh once to build its image, and
runs /autograder/run_autograder for every submission. setup.sh makes a Python ≥ 3.11 virtual
environment in /autograder/venv, installs the CPU build of torch from PyTorch's index and then
handattn from the wheel inside the zip, so no package index needs to know handattn.
run_autograder reads AUTOGRADER_ROOT (default /autograder) and HANDATTN_PYTHON so that a test can
run it against a fake tree; if Python cannot even start, it still writes a valid results.json.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from handattn.errors import HandattnError
from handattn.grading.autograder import CONFIG_NAME, AutograderConfig

TORCH_INDEX = "https://download.pytorch.org/whl/cpu"

SETUP = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu).
set -euo pipefail
cd "$(dirname "$0")"
PY=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    PY="$candidate"; break
  fi
done
if [ -z "$PY" ]; then  # Ubuntu 22.04 ships Python 3.10
  apt-get update && apt-get install -y python3.11 python3.11-venv
  PY=python3.11
fi
if ! "$PY" -m venv /autograder/venv; then  # Debian and Ubuntu keep venv in a package of its own
  apt-get update && apt-get install -y "$(basename "$PY")-venv" || apt-get install -y python3-venv
  "$PY" -m venv /autograder/venv
fi
/autograder/venv/bin/python -m pip install --upgrade pip
/autograder/venv/bin/python -m pip install --index-url {torch_index} "torch=={torch}"
echo "torch=={torch}" > /tmp/handattn-constraints.txt
/autograder/venv/bin/python -m pip install -c /tmp/handattn-constraints.txt ./{wheel}
/autograder/venv/bin/python -c "import handattn, torch; print('handattn', handattn.__version__, 'torch', torch.__version__)"
"""

RUN = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission. AUTOGRADER_ROOT and HANDATTN_PYTHON exist for testing.
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{HANDATTN_PYTHON:-$ROOT/venv/bin/python}}"
RESULTS="$ROOT/results"
mkdir -p "$RESULTS"
rm -f "$RESULTS/results.json"
"$PYTHON" -m handattn.gradescope --config "$ROOT/source/{config}" \\
    --submission "$ROOT/submission" --results "$RESULTS"
if [ ! -s "$RESULTS/results.json" ]; then
  cat > "$RESULTS/results.json" <<'JSON'
{{"score": 0, "output": "The autograder could not start handattn. Please tell your instructor.", "tests": []}}
JSON
fi
exit 0
"""


class AutograderBuildError(HandattnError):
    """The zip could not be built (no source tree to build the wheel from, or the build failed)."""


def project_root() -> Path:
    """The source tree this handattn runs from (a clone): the folder holding pyproject.toml."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or 'name = "handattn"' not in (root / "pyproject.toml").read_text():
        raise AutograderBuildError(
            "--build-zip bundles a wheel built from handattn's source: run it from a clone of the repository "
            "(python -m pip install -e .)"
        )
    return root


def build_wheel(root: Path, folder: Path) -> Path:
    """A wheel of handattn, built by pip (no network, no dependencies) from a clean copy of the sources:
    a build/ folder left in the clone could otherwise add modules that no longer exist."""
    source = folder / "source"
    shutil.copytree(root / "handattn", source / "handattn", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(root / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(folder)]
    proc = subprocess.run([*command, str(source)], capture_output=True, text=True)
    wheels = sorted(folder.glob("handattn-*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = "; ".join(proc.stderr.strip().splitlines()[-3:])
        raise AutograderBuildError(f"building the handattn wheel failed: {tail or 'pip made no wheel'}")
    return wheels[-1]


def build_zip(
    path: str | Path,
    config: AutograderConfig,
    problem_files: dict[str, Path] | None = None,
    torch_version: str | None = None,
) -> Path:
    """Write the autograder zip to `path` and return it; `problem_files` maps names in the zip (those
    `config.problem_files` lists) to instructors' problem files to bundle."""
    if torch_version is None:
        import torch

        torch_version = torch.__version__.split("+")[0]
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = build_wheel(project_root(), Path(tmp))
        files = {
            "setup.sh": SETUP.format(torch_index=TORCH_INDEX, torch=torch_version, wheel=wheel.name),
            "run_autograder": RUN.format(config=CONFIG_NAME),
            CONFIG_NAME: config.to_json(),
        }
        tmp_zip = Path(tmp) / "autograder.zip"
        with zipfile.ZipFile(tmp_zip, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, text in files.items():
                _add(zf, name, text.encode(), executable=name in ("setup.sh", "run_autograder"))
            _add(zf, wheel.name, wheel.read_bytes(), executable=False)
            for name, source in (problem_files or {}).items():
                _add(zf, name, Path(source).read_bytes(), executable=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(tmp_zip.read_bytes())
    return path


def _add(zf: zipfile.ZipFile, name: str, data: bytes, executable: bool) -> None:
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))  # fixed: the same inputs, the same zip
    mode = 0o755 if executable else 0o644
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)
