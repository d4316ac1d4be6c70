"""Image references and registry credentials (app.domain.images): examples, then properties
checked against Docker's own reading of a reference."""

from __future__ import annotations

import base64
import json
import re
import string

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from app.domain.images import parse_image, registry_auth_header
from tests.unit.helpers import HUB, HUB_ALIASES, digests, paths, references, registries, tags


@pytest.mark.parametrize(
    "reference, registry, repository, tag",
    [
        ("alpine", "docker.io", "alpine", None),
        ("functions/alpine:latest", "docker.io", "functions/alpine", "latest"),
        ("index.docker.io/functions/alpine", "docker.io", "functions/alpine", None),
        ("registry:5000/a/b:c", "registry:5000", "a/b", "c"),
        ("localhost/fn", "localhost", "fn", None),
        ("my.registry/x", "my.registry", "x", None),
    ],
)
def test_image_references(reference, registry, repository, tag):
    ref = parse_image(reference)
    assert (ref.registry, ref.repository, ref.tag) == (registry, repository, tag)


@pytest.mark.parametrize("reference", ["", "UPPER", "a b", "a:", "a@sha256:12", "/a", "a//b", "x" * 300])
def test_image_references_refused(reference):
    with pytest.raises(ValueError):
        parse_image(reference)


HUB_AUTH_ADDRESS = "https://index.docker.io/v1/"


_DOCKER_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


@given(references())
@example(("registry:5000/team/fn:1.0@sha256:" + "a" * 64, "registry:5000", "team/fn", "1.0", "sha256:" + "a" * 64))
def test_parse_image_recovers_the_parts(parts):
    reference, registry, repository, tag, digest = parts
    assume(len(reference) <= 255)  # The length limit has its own test below.
    ref = parse_image(reference)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


@given(paths.filter(lambda path: "/" not in path or not ("." in path.split("/")[0] or path.startswith("localhost/"))),
       st.one_of(st.just(""), tags.map(":".__add__)))
def test_short_docker_hub_names_mean_docker_hub(path, tag):
    for prefix in ("", *(alias + "/" for alias in HUB_ALIASES)):
        ref = parse_image(prefix + path + tag)
        assert (ref.registry, ref.repository) == (HUB, path)


@st.composite
def _mutated_references(draw) -> str:
    reference = draw(references())[0]
    at = draw(st.integers(0, len(reference)))
    cut = draw(st.integers(0, 3))
    return reference[:at] + draw(st.text(max_size=3)) + reference[at + cut:]


_reference_soup = st.text(alphabet=st.one_of(st.sampled_from("abcXY09._-/:@ "), st.characters()), max_size=40)


@given(st.one_of(_mutated_references(), _reference_soup))
def test_parse_image_raises_only_value_error(text):
    try:
        ref = parse_image(text)
    except ValueError:
        pass
    else:
        assert ref.repository and ref.registry


# Docker's tag grammar uses Go's ASCII-only \w; "fn:lätest" used to be accepted here, then refused by Docker.
@given(paths, st.text(alphabet=st.one_of(st.sampled_from(string.ascii_letters + string.digits + "_.-"),
                                         st.characters(min_codepoint=128, categories=("Ll", "Lu", "Nd"))),
                      min_size=1, max_size=10))
@example("fn", "lätest")
def test_tags_are_ascii_as_docker_reads_them(path, tag):
    try:
        accepted = parse_image(f"{path}:{tag}").tag == tag
    except ValueError:
        accepted = False
    assert accepted == bool(_DOCKER_TAG.fullmatch(tag))


@st.composite
def _long_names(draw) -> tuple[str, str, str]:
    registry = draw(registries)
    path = "p" * (draw(st.integers(200, 300)) - len(registry) - 1)
    suffix = draw(st.one_of(tags.map(":".__add__), st.just(""))) + "@" + draw(digests)
    return f"{registry}/{path}", path, suffix


# Docker limits the name (registry/repository), not the tag or digest, to 255 characters.
@given(_long_names())
@example(("r.io/" + "p" * 195, "p" * 195, "@sha256:" + "a" * 64))
def test_only_the_name_is_limited_to_255_characters(parts):
    name, path, suffix = parts
    if len(name) > 255:
        with pytest.raises(ValueError):
            parse_image(name + suffix)
    else:
        assert parse_image(name + suffix).repository == path


_users = st.text(min_size=1, max_size=20).filter(lambda user: ":" not in user)


@given(references(), _users, st.text(max_size=20))
def test_registry_auth_round_trips_for_the_image_registry(parts, user, password):
    reference, registry = parts[0], parts[1]
    assume(len(reference) <= 255)  # Longer ones are refused: test_only_the_name_is_limited_to_255_characters.
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config = json.loads(base64.urlsafe_b64decode(registry_auth_header(auth, reference)))
    address = HUB_AUTH_ADDRESS if registry == HUB else registry
    assert config == {"username": user, "password": password, "serveraddress": address}


@given(st.one_of(st.text(max_size=30), st.binary(max_size=30).map(lambda raw: base64.b64encode(raw).decode())))
def test_registry_auth_raises_only_value_error(auth):
    try:
        header = registry_auth_header(auth, "functions/alpine:latest")
    except ValueError:
        pass
    else:
        user, _, password = base64.b64decode(auth).decode().partition(":")
        config = json.loads(base64.urlsafe_b64decode(header))
        assert config == {"username": user, "password": password, "serveraddress": HUB_AUTH_ADDRESS} and user
