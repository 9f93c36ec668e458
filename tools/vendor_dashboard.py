"""Vendor the third-party browser files from npm and write their manifest.

The dashboard's code, and Swagger UI and ReDoc for the API pages ``/docs`` and
``/redoc`` (``http/apidocs.py``), so that neither needs a CDN.

    python tools/vendor_dashboard.py

Runs ``npm pack NAME@VERSION`` for each package below (npm checks the
tarball against the registry's integrity hash), copies the listed files and
the package's license into ``src/jobplane/dashboard/static/vendor/NAME/``,
and writes ``vendor/manifest.json``: for every file its package, version,
path inside the tarball, the tarball's integrity and the file's SHA-256.
``tests/unit/test_dashboard_files.py`` checks the files against it. To
upgrade a package, change its version here and run this again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

VENDOR = Path(__file__).resolve().parent.parent / "src/jobplane/dashboard/static/vendor"

PACKAGES = {
    # name: (version, license, {path in the tarball: file name in vendor/NAME/})
    "preact": (
        "11.2.0",
        "MIT",
        {
            "package/dist/preact.mjs": "preact.mjs",
            "package/hooks/dist/hooks.mjs": "hooks.mjs",
            "package/LICENSE": "LICENSE",
        },
    ),
    "htm": (
        "3.1.1",
        "Apache-2.0",
        {"package/dist/htm.module.js": "htm.mjs", "package/LICENSE": "LICENSE"},
    ),
    "uplot": (
        "1.6.32",
        "MIT",
        {
            "package/dist/uPlot.esm.js": "uPlot.esm.js",
            "package/dist/uPlot.min.css": "uPlot.min.css",
            "package/LICENSE": "LICENSE",
        },
    ),
    "swagger-ui-dist": (
        "5.35.0",
        "Apache-2.0",
        {
            "package/swagger-ui-bundle.js": "swagger-ui-bundle.js",
            "package/swagger-ui-bundle.js.LICENSE.txt": "swagger-ui-bundle.js.LICENSE.txt",
            "package/swagger-ui.css": "swagger-ui.css",
            "package/LICENSE": "LICENSE",
            "package/NOTICE": "NOTICE",
        },
    ),
    "redoc": (
        "2.5.4",
        "MIT",
        {
            "package/bundles/redoc.standalone.js": "redoc.standalone.js",
            "package/bundles/redoc.standalone.js.LICENSE.txt": "redoc.standalone.js.LICENSE.txt",
            "package/LICENSE": "LICENSE",
        },
    ),
}


def main() -> None:
    files = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (version, license_id, wanted) in PACKAGES.items():
            packed = subprocess.run(
                ["npm", "pack", f"{name}@{version}", "--json", "--pack-destination", tmp],
                check=True,
                capture_output=True,
                text=True,
            )
            info = json.loads(packed.stdout)[0]
            target = VENDOR / name
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            with tarfile.open(Path(tmp) / info["filename"]) as tar:
                for member, local in wanted.items():
                    source = tar.extractfile(member)
                    assert source is not None, f"{name}: {member} is not a file"
                    data = source.read()
                    (target / local).write_bytes(data)
                    files.append(
                        {
                            "path": f"{name}/{local}",
                            "package": name,
                            "version": version,
                            "license": license_id,
                            "source": f"npm:{name}@{version}/{member.removeprefix('package/')}",
                            "tarball_integrity": info["integrity"],
                            "sha256": hashlib.sha256(data).hexdigest(),
                        }
                    )
    manifest = {"generated_by": "tools/vendor_dashboard.py", "files": files}
    (VENDOR / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"vendored {len(files)} files into {VENDOR}")


if __name__ == "__main__":
    main()
