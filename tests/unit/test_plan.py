"""The per-start plan (mlhub/core/plan.py): a pure function of validated options and the
admin's configuration; applying options never writes the admin's settings."""

from __future__ import annotations

import copy
import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from mlhub.core.options import OptionLimits, validate_options
from mlhub.core.plan import GPU_RESOURCE, AdminConfig, Workspace, make_plan

LIMITS = OptionLimits(
    images={"mlhub/workspace:latest": "mlhub/workspace:latest", "other:1": "other:1"},
    default_image="mlhub/workspace:latest",
    default_cpu_limit=1.0,
    max_cpu_limit=8.0,
    default_mem_limit=2 << 30,
    max_mem_limit=64 << 30,
    max_gpus=4,
)
TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
KUBE = AdminConfig(
    hub_name="h1",
    install_id="abcdefgh",
    request_ratio=0.5,
    gpu_node_selector={"accelerator": "nvidia"},
    gpu_tolerations=(TOLERATION,),
)
DOCKER = AdminConfig(hub_name="h1", install_id="abcdefgh")
WS = Workspace(user="alice", server="box", created_by="alice", expiration_timestamp=1_900_000_000)

raw_options = st.fixed_dictionaries(
    {},
    optional={
        "image": st.sampled_from(["mlhub/workspace:latest", "other:1"]),
        "cpu_limit": st.sampled_from(["", "0.5", "2", "8"]),
        "mem_limit": st.sampled_from(["", "512m", "4g"]),
        "gpus": st.sampled_from(["", "0", "1", "2", "4"]),
        "shm_size": st.sampled_from(["", "64m", "256m"]),
        "env": st.sampled_from(["", "A=1", "A=1\nB=two"]),
        "is_mount_volume": st.booleans(),
        "days_to_live": st.sampled_from(["", "0", "3"]),
    },
)


@given(raw_options, st.sampled_from([KUBE, DOCKER]))
def test_same_options_give_an_equal_plan_and_inputs_stay(raw, admin):
    options = validate_options(raw, LIMITS)
    before = (copy.deepcopy(options), copy.deepcopy(admin))
    first = make_plan(options, admin, WS)
    second = make_plan(options, admin, WS)
    assert first == second
    assert (options, admin) == before
    # immutable: the plan and its mappings cannot be written to
    try:
        first.labels["mlhub.user"] = "mallory"  # type: ignore[index]
    except TypeError:
        pass
    else:
        raise AssertionError("plan labels are writable")
    assert dataclasses.is_dataclass(first) and first.__dataclass_params__.frozen


def test_gpus_two_two_then_none_on_kubernetes():
    plans = [make_plan(validate_options({"gpus": g}, LIMITS), KUBE, WS) for g in ("2", "2", "")]
    assert plans[0] == plans[1]
    assert plans[0].extra_resource_limits == {GPU_RESOURCE: "2"}
    assert plans[0].tolerations == (TOLERATION,) and plans[0].node_selector == {"accelerator": "nvidia"}
    assert (
        plans[2].extra_resource_limits == {} and plans[2].tolerations == () and plans[2].node_selector == {}
    )


def test_limits_env_and_labels():
    plan = make_plan(validate_options({"cpu_limit": "2", "mem_limit": "4g", "env": "A=1"}, LIMITS), KUBE, WS)
    assert (plan.cpu_limit, plan.mem_limit, plan.cpu_guarantee, plan.mem_guarantee) == (
        2.0,
        4 << 30,
        1.0,
        2 << 30,
    )
    env = plan.environment({"A": "engine", "CPU_LIMIT": "9.0", "MEM_GUARANTEE": "1", "JUPYTER_IMAGE": "x"})
    assert env["A"] == "engine"  # the engine's own variables win over the user's
    assert env["CPU_LIMIT"] == "2" and env["MEM_LIMIT"] == str(4 << 30)
    assert env["MEM_GUARANTEE"] == str(2 << 30) and env["CPU_GUARANTEE"] == "1.0"
    assert env["JUPYTER_IMAGE"] == env["JUPYTER_IMAGE_SPEC"] == "mlhub/workspace:latest"
    assert env["MLHUB_EXPIRATION_TIMESTAMP"] == "1900000000" and env["MLHUB_HUB_NAME"] == "h1"
    assert plan.labels["mlhub.user"] == "alice" and plan.labels["mlhub.cpu_limit"] == "2"
    docker = make_plan(validate_options({}, LIMITS), DOCKER, WS)
    assert docker.cpu_guarantee is None and docker.mem_guarantee is None
    # on Docker the admin's guarantees (not used by the engine) are left as they were
    assert docker.environment({"CPU_GUARANTEE": "0.5", "CPU_LIMIT": "7"})["CPU_GUARANTEE"] == "0.5"
    assert docker.environment({"CPU_LIMIT": "7"})["CPU_LIMIT"] == "1"
