"""Tiny wheels made in the test, handed into workspaces that have no network: what a user's
`pip install` or a job's requirements.txt installs, without PyPI."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path


def make_wheel(folder: Path, name: str, version: str = "1.0", script: str | None = None) -> Path:
    """Write ``<name>-<version>-py3-none-any.whl`` into *folder*: module *name* whose ``WHO``
    is ``"<name> <version>"``, and, with *script*, a console script of that name printing it."""
    files = {
        f"{name}/__init__.py": f"WHO = {name + ' ' + version!r}\n\ndef main():\n    print(WHO)\n",
        f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{name}-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: mlhub-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    if script:
        files[f"{name}-{version}.dist-info/entry_points.txt"] = f"[console_scripts]\n{script} = {name}:main\n"
    record = f"{name}-{version}.dist-info/RECORD"
    lines = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        lines.append(f"{path},sha256={digest},{len(text.encode())}")
    files[record] = "\n".join([*lines, f"{record},,"]) + "\n"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


def tar_of(*paths: Path) -> bytes:
    """A tar archive of *paths* (by their names), readable by everyone, for put_archive."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in paths:
            info = tar.gettarinfo(str(path), arcname=path.name)
            info.mode, info.uid, info.gid = 0o644, 1000, 100
            with open(path, "rb") as fh:
                tar.addfile(info, fh)
    return buffer.getvalue()
