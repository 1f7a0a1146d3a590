"""The images tests run workspaces from, and hub configs that make workspaces misbehave."""

from __future__ import annotations

import os

#: MLHUB_TEST_WORKSPACE_IMAGE: test a development build (docker/build-images.sh --tag-suffix)
WORKSPACE_IMAGE = os.environ.get("MLHUB_TEST_WORKSPACE_IMAGE", "mlhub/workspace:latest")


STOCK_IMAGE = "mlhub/test-stock:latest"


#: Hub config for fault tests: users named ``slow*`` get a workspace whose single-user server
#: starts 8 s after its container, ``hang*`` one that never serves HTTP, and for ``stall*``
#: the spawner's start stalls for 60 s before the container is created.
SLOW_AND_HANGING_WORKSPACES = """
import asyncio
async def _fault_command(spawner):
    name = spawner.user.name
    if name.startswith("stall"):
        await asyncio.sleep(60)
        return {}
    if name.startswith("hang"):
        return {"command": ["sleep", "3600"]}
    if name.startswith("slow"):
        return {"command": ["sh", "-c", "sleep 8 && exec jupyterhub-singleuser"]}
    return {}
c.DockerSpawner.extra_create_kwargs = _fault_command
"""
