"""The dashboard's files: vendored code matches its manifest, every import resolves,
and the files are part of the package."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from jobplane.dashboard import STATIC

VENDOR = STATIC / "vendor"
MANIFEST = json.loads((VENDOR / "manifest.json").read_text())


def test_every_vendored_file_matches_its_manifest_entry() -> None:
    listed = {entry["path"]: entry for entry in MANIFEST["files"]}
    on_disk = {
        path.relative_to(VENDOR).as_posix()
        for path in VENDOR.rglob("*")
        if path.is_file() and path.name != "manifest.json"
    }
    assert on_disk == set(listed), "vendor/ and manifest.json list different files"
    for path, entry in listed.items():
        digest = hashlib.sha256((VENDOR / path).read_bytes()).hexdigest()
        assert digest == entry["sha256"], f"{path} changed since it was vendored"
        name, version = entry["package"], entry["version"]
        assert entry["source"].startswith(f"npm:{name}@{version}/")
        assert entry["tarball_integrity"].startswith("sha512-")
        assert entry["license"] in ("MIT", "Apache-2.0")


def test_every_vendored_package_ships_its_license() -> None:
    packages = {entry["package"] for entry in MANIFEST["files"]}
    licensed = {e["package"] for e in MANIFEST["files"] if e["path"].endswith("/LICENSE")}
    assert packages == licensed == {"preact", "htm", "uplot", "swagger-ui-dist", "redoc"}


def test_every_module_import_and_page_reference_resolves() -> None:
    page = (STATIC / "index.html").read_text()
    [import_map] = re.findall(r'<script type="importmap">(.*?)</script>', page, re.S)
    bare = json.loads(import_map)["imports"]
    for target in bare.values():
        assert (STATIC.parent / target).is_file(), target
    for reference in re.findall(r'(?:href|src)="(static/[^"]+)"', page):
        assert (STATIC.parent / reference).is_file(), reference
    for module in (STATIC / "js").rglob("*.js"):
        for spec in re.findall(
            r'^\s*(?:import|export)\b[^;]*?from\s+"([^"]+)"', module.read_text(), re.M | re.S
        ):
            if spec.startswith("."):
                assert (module.parent / spec).resolve().is_file(), f"{module.name}: {spec}"
            else:
                assert spec in bare, f"{module.name} imports {spec}, which the import map lacks"


def test_the_wheel_takes_the_dashboard_files() -> None:
    """Hatch puts every file under src/jobplane into the wheel unless git ignores it."""
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert 'packages = ["src/jobplane"]' in pyproject
    ignored = (Path(__file__).parents[2] / ".gitignore").read_text().split()
    for pattern in ignored:
        for path in STATIC.rglob("*"):
            assert not path.match(pattern.strip("/")), f"{path} is git-ignored: not in the wheel"
