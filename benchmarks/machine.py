"""Facts about the machine and the workspace image, for the results' header."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import docker


def machine() -> str:
    mem = Path("/proc/meminfo").read_text().split()[1]
    info = docker.from_env().info()
    return (
        f"{os.cpu_count()} cores, {int(mem) // 1024 // 1024} GiB, {platform.platform()}, "
        f"Docker {info.get('ServerVersion')}, Python {platform.python_version()}"
    )


def image_facts(image: str) -> str:
    """``image (id, created)`` so a reader knows which build was measured."""
    try:
        attrs = docker.from_env().images.get(image).attrs
    except docker.errors.ImageNotFound:
        return f"{image} (missing)"
    return f"{image} ({attrs['Id'][7:19]}, built {attrs['Created'][:19]})"


def import_profile(image: str = "mlhub/workspace:latest", top: int = 12) -> list[str]:
    """The slowest imports (cumulative) of a workspace's server start: ``python -X importtime``."""
    done = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--entrypoint",
            "python",
            image,
            "-X",
            "importtime",
            "-c",
            "import jupyterhub.singleuser, jupyterlab, jupyter_server.serverapp",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:") and "|" in line]
    lines = [line for line in lines if line.split("|")[1].strip().isdigit()]
    lines.sort(key=lambda line: int(line.split("|")[1]), reverse=True)
    return [line.removeprefix("import time:").rstrip() for line in lines[:top]]
