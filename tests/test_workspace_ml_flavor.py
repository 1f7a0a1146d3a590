"""The ``ml`` flavor (PyTorch, scikit-learn, XGBoost, LightGBM, TensorBoard wired to PyTorch): a
tiny model trains in a real workspace started by a real hub, and its TensorBoard logs show up in
the TensorBoard tool through the hub. The image is several GB and not built by CI; these tests
are skipped until it is built:

    bash docker/build-images.sh --flavor ml && python -m pytest tests/test_workspace_ml_flavor.py
"""

from __future__ import annotations

import os
import time

import docker
import pytest
import requests

from tests.support.images import WORKSPACE_IMAGE

ML_IMAGE = os.environ.get("MLHUB_TEST_ML_IMAGE", "mlhub/workspace:ml")

TRAIN = r"""
import numpy as np, torch, sklearn.linear_model, xgboost, lightgbm
from torch.utils.tensorboard import SummaryWriter

torch.manual_seed(0)
x = torch.randn(256, 3)
y = x @ torch.tensor([1.5, -2.0, 0.5]) + 0.3
model = torch.nn.Linear(3, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
writer = SummaryWriter("/workspace/logs/tiny-run")
losses = []
for step in range(60):
    optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x).squeeze(1), y)
    loss.backward()
    optimizer.step()
    writer.add_scalar("loss", loss.item(), step)
    losses.append(loss.item())
writer.close()
X, Y = x.numpy(), y.numpy()
scores = [m.fit(X, Y).score(X, Y) for m in (sklearn.linear_model.LinearRegression(),
          xgboost.XGBRegressor(n_estimators=20), lightgbm.LGBMRegressor(n_estimators=20, verbose=-1))]
print("first", losses[0], "last", losses[-1], "scores", *scores, "cuda", torch.cuda.is_available())
"""


@pytest.fixture(scope="module")
def ml_hub(hub_factory, docker_client):
    try:
        docker_client.images.get(ML_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(
            f"{ML_IMAGE} is not built (several GB, not built by CI): bash docker/build-images.sh --flavor ml"
        )
    hub = hub_factory(
        env={"MLHUB_MAX_CPU_LIMIT": "2", "MLHUB_ALLOWED_IMAGES": f"{WORKSPACE_IMAGE},{ML_IMAGE}"}
    )
    hub.carol_token = hub.ensure_user("carol")
    r = hub.spawn("carol", "", {"cpu_limit": 2, "image": ML_IMAGE}, token=hub.carol_token)
    assert r.status_code in (201, 202), r.text
    hub.container = docker_client.containers.get(hub.server("carol")["state"]["object_id"])
    return hub


def get(hub, path: str, timeout: float = 90) -> requests.Response:
    deadline = time.monotonic() + timeout
    while True:
        r = requests.get(hub.at(path), headers={"Authorization": f"token {hub.carol_token}"}, timeout=60)
        if r.status_code not in (502, 503, 504) or time.monotonic() > deadline:
            return r
        time.sleep(1)


def test_a_tiny_model_trains_and_its_logs_show_in_tensorboard(ml_hub):
    result = ml_hub.container.exec_run(["python", "-c", TRAIN])
    out = result.output.decode()
    assert result.exit_code == 0, out
    words = out.split()
    first, last = float(words[words.index("first") + 1]), float(words[words.index("last") + 1])
    assert last < first / 10, out  # it learned
    scores = [float(s) for s in words[words.index("scores") + 1 : words.index("cuda")]]
    assert all(score > 0.8 for score in scores), out

    deadline = time.monotonic() + 90
    while True:  # TensorBoard rescans its log folder every few seconds
        runs = get(ml_hub, "/user/carol/tools/tensorboard/data/runs")
        if runs.status_code == 200 and "tiny-run" in runs.json():
            break
        assert time.monotonic() < deadline, (runs.status_code, runs.text[:300])
        time.sleep(2)
    tags = get(ml_hub, "/user/carol/tools/tensorboard/data/plugin/scalars/tags").json()
    assert "loss" in tags["tiny-run"], tags


def test_the_monitor_has_its_gpu_view(ml_hub):
    """Glances' GPU plugin reads NVML (nvidia-ml-py): it lists GPUs when the runtime gives any,
    and an empty list, not an error, when there are none (as here)."""
    plugins = get(ml_hub, "/user/carol/tools/monitor/api/4/pluginslist")
    assert plugins.status_code == 200, plugins.text[:300]
    assert "gpu" in plugins.json()
    assert ml_hub.container.exec_run(["python", "-c", "import pynvml"]).exit_code == 0
    gpus = get(ml_hub, "/user/carol/tools/monitor/api/4/gpu")
    assert gpus.status_code == 200, gpus.text[:300]
    if not os.path.exists("/dev/nvidia0"):
        assert gpus.json() == [], gpus.text[:300]


CUDA_CHECK = r"""
import torch, torchvision
x = torch.randn(64, 64)
print("cuda-build", torch.version.cuda, "available", torch.cuda.is_available(),
      "cpu-ok", bool(torch.allclose(x @ torch.eye(64), x)), "vision", torchvision.__version__)
"""


def test_pytorch_is_a_cuda_build_that_runs_on_the_cpu_without_a_gpu(ml_hub):
    """PyTorch is PyPI's CUDA build (it uses a GPU when the NVIDIA runtime gives the workspace
    one); with no GPU, as on this machine, it runs on the CPU."""
    result = ml_hub.container.exec_run(["python", "-c", CUDA_CHECK])
    out = result.output.decode()
    assert result.exit_code == 0, out
    words = out.split()
    assert words[words.index("cuda-build") + 1] != "None", out
    assert words[words.index("cpu-ok") + 1] == "True", out
    if not os.path.exists("/dev/nvidia0"):
        assert words[words.index("available") + 1] == "False", out
