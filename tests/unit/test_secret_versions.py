"""Secrets as versions of Swarm secrets (app/runtime/swarm/secret_versions.py): owned by OpenFaaS,
an update rolls exactly the functions that mount the secret, a delete refuses one in use."""

from __future__ import annotations

import pytest

from app.errors import BackendFailure, Conflict, NotFound
from app.runtime.swarm import naming
from tests.fakes import fn, mounted


def test_secrets_are_versions_owned_by_openfaas(runtime, engine):
    engine.create_secret("foreign", b"x")
    labels = {naming.SECRET_OWNER_LABEL: "someone", naming.SECRET_NAME_LABEL: "o", naming.SECRET_VERSION_LABEL: "1"}
    engine.create_secret("other-owner", b"x", labels)
    runtime.secrets.create_secret("api-key", b"v1")
    assert runtime.secrets.list_secrets() == ["api-key"]
    assert engine.secret_value("api-key-v1") == b"v1"
    with pytest.raises(Conflict, match="already exists"):
        runtime.secrets.create_secret("api-key", b"again")


def test_a_docker_secret_of_the_same_name_outside_openfaas_is_a_conflict(runtime, engine):
    engine.create_secret("api-key-v1", b"x")
    with pytest.raises(Conflict, match="outside OpenFaaS"):
        runtime.secrets.create_secret("api-key", b"v1")


def test_update_rolls_every_function_mounting_the_secret_and_only_those(runtime, engine):
    runtime.secrets.create_secret("api-key", b"v1")
    runtime.secrets.create_secret("other", b"o")
    runtime.functions.deploy(fn("a", secrets=["api-key", "other"]))
    runtime.functions.deploy(fn("b", secrets=["api-key"]))
    runtime.functions.deploy(fn("c", secrets=["other"]))
    # Another client scales b between our read of it and our update: it must still move.
    engine.inject("POST", rf"/services/{engine.service('b')['ID']}/update", lambda: engine.touch("b"))
    untouched = engine.service("c")["Version"]
    runtime.secrets.update_secret("api-key", b"v2")
    assert mounted(engine, "a") == ["api-key-v2", "other-v1"]
    assert mounted(engine, "b") == ["api-key-v2"]
    assert mounted(engine, "c") == ["other-v1"] and engine.service("c")["Version"] == untouched
    assert sorted(s["Spec"]["Name"] for s in engine.secrets.values()) == ["api-key-v2", "other-v1"]
    assert engine.secret_value("api-key-v2") == b"v2"
    assert runtime.functions.get_function("a").secrets == ["api-key", "other"]


def test_a_function_that_cannot_be_moved_is_named_and_the_others_still_move(runtime, engine):
    runtime.secrets.create_secret("api-key", b"v1")
    runtime.functions.deploy(fn("a", secrets=["api-key"]))
    runtime.functions.deploy(fn("b", secrets=["api-key"]))
    b = engine.service("b")["ID"]
    engine.inject("POST", rf"/services/{b}/update", (500, "rpc error: code = Unknown desc = raft failed"))
    with pytest.raises(BackendFailure, match="functions b could not be moved onto it; retry the update"):
        runtime.secrets.update_secret("api-key", b"v2")
    assert (mounted(engine, "a"), mounted(engine, "b")) == (["api-key-v2"], ["api-key-v1"])
    # The old version is still mounted by b, so Docker refuses to remove it; a retry finishes.
    assert {s["Spec"]["Name"] for s in engine.secrets.values()} == {"api-key-v1", "api-key-v2"}
    runtime.secrets.update_secret("api-key", b"v3")
    assert (mounted(engine, "a"), mounted(engine, "b")) == (["api-key-v3"], ["api-key-v3"])
    assert {s["Spec"]["Name"] for s in engine.secrets.values()} == {"api-key-v3"}


def test_update_of_an_unknown_secret_is_not_found(runtime):
    with pytest.raises(NotFound, match="Secret ghost not found"):
        runtime.secrets.update_secret("ghost", b"x")


def test_delete_refuses_a_secret_in_use_naming_the_functions(runtime, engine):
    runtime.secrets.create_secret("api-key", b"v1")
    runtime.functions.deploy(fn("a", secrets=["api-key"]))
    runtime.functions.deploy(fn("b", secrets=["api-key"]))
    with pytest.raises(Conflict, match="in use by functions a, b"):
        runtime.secrets.delete_secret("api-key")
    runtime.functions.delete("a")
    runtime.functions.delete("b")
    runtime.secrets.delete_secret("api-key")
    assert engine.secrets == {}
    with pytest.raises(NotFound):
        runtime.secrets.delete_secret("api-key")


def test_delete_of_a_secret_a_foreign_service_mounts_is_a_conflict(runtime, engine):
    runtime.secrets.create_secret("api-key", b"v1")
    secret = next(iter(engine.secrets.values()))
    engine.create_service({"Name": "other", "TaskTemplate": {"ContainerSpec": {"Image": "nginx", "Secrets": [
        {"File": {"Name": "/run/k"}, "SecretID": secret["ID"], "SecretName": "api-key-v1"}]}}})
    with pytest.raises(Conflict, match="still in use.*other"):
        runtime.secrets.delete_secret("api-key")


def test_a_removal_docker_refuses_names_the_secret_and_dockers_reason(runtime, engine):
    runtime.secrets.create_secret("key", b"v")
    engine.inject("DELETE", r"/secrets/[^/]+", (500, "rpc error: code = Unknown desc = raft failed"))
    with pytest.raises(BackendFailure, match="^Docker could not remove secret key: .*raft failed"):
        runtime.secrets.delete_secret("key")
