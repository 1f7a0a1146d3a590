"""The workspace state schema (mlhub/core/workspace.py), read the same by every reader."""

from __future__ import annotations

from mlhub.core.workspace import STATE_KEY, WorkspaceMeta, engine_object_ref, meta_of_state


def test_meta_round_trips_through_a_spawner_state():
    meta = WorkspaceMeta("admin", 1.5, 1700000000, {"image": "x", "gpus": ""}, {"pids": 64, "disk": 2**30})
    state = {"object_id": "abc", STATE_KEY: meta.to_state()}
    assert meta_of_state(state) == meta
    assert engine_object_ref(state) == "abc"


def test_missing_or_malformed_state_reads_as_none():
    for state in (None, {}, {"pod_name": "p"}, {STATE_KEY: None}, {STATE_KEY: {}}, "x", {STATE_KEY: "x"}):
        assert meta_of_state(state) is None
    assert engine_object_ref(None) == "" and engine_object_ref({"pod_name": "p"}) == "p"
    meta = meta_of_state({STATE_KEY: {"expiration_timestamp": "12", "bounds": {"pids": "many", "disk": 5}}})
    assert meta is not None and meta.expiration_timestamp == 12 and meta.bounds == {"disk": 5}
