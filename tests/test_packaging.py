"""The wheel installs one import name, `crm_qualify`, so nothing of ours shadows or is shadowed
by the package index's `adapters` or `mappings` distributions."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_has_one_top_level_name(tmp_path: Path) -> None:
    source = tmp_path / "source"
    for name in ("connector", "adapters", "mappings"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("crm_qualify-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {
        name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(".dist-info")
    }
    assert top == {"crm_qualify"}
    assert "crm_qualify/mappings/hubspot.toml" in names
    assert "crm_qualify/connector/sync/engine.py" in names
    assert "crm_qualify/adapters/salesforce/simulator/soql.py" in names


def test_the_cli_loads_the_model_fitting_only_for_calibrate() -> None:
    """numpy and scikit-learn weigh about 90 MB: a sync or the daemon never carries them."""
    probe = (
        "import sys, crm_qualify.connector.cli, crm_qualify.adapters.salesforce,"
        " crm_qualify.adapters.hubspot;"
        " print(sorted({'numpy', 'scipy', 'sklearn'} & set(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
