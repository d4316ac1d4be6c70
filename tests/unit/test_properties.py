"""Property tests of the pure code: names, image references, quantities, label and annotation
mapping, the scaling rule and timestamps.

Each property states a rule of CONTRACT.md or of the module's docstring and checks it against
generated inputs, most often with an independent oracle written here from the rule's wording.
test_pure.py, test_specs.py and test_alert.py hold the examples; this file holds the generalisations.

The ``@example`` inputs are the defects these properties found, kept as regressions.
"""

from __future__ import annotations

import base64
import calendar
import json
import math
import re
import string
from datetime import datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from app.domain.images import parse_image, registry_auth_header
from app.domain.models import (
    ANNOTATION_PREFIX,
    DEFAULT_SCALE_MAX,
    GATEWAY_LABEL_PREFIX,
    LABEL_FAAS_FUNCTION,
    LABEL_FUNCTION,
    LABEL_SCALE_FACTOR,
    LABEL_SCALE_MAX,
    LABEL_SCALE_MIN,
    LABEL_SCALE_ZERO,
    MAX_REPLICAS,
    Resources,
    ScalingPolicy,
)
from app.domain.names import function_name_error, secret_name_error
from app.domain.quantities import parse_cpu, parse_memory
from app.domain.scaling import alert_target
from app.domain.timestamps import from_docker, normalise, parse_rfc3339
from app.runtime.swarm.naming import SecretVersion
from app.runtime.swarm.specs import build_service_spec, function_status
from app.web.schemas import FunctionDeploymentSchema, FunctionStatusSchema

DEPLOYMENT = FunctionDeploymentSchema()
STATUS = FunctionStatusSchema()
HUB = "docker.io"
HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")
HUB_AUTH_ADDRESS = "https://index.docker.io/v1/"

# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------

_FUNCTION_CHARS = frozenset(string.ascii_lowercase + string.digits + "-")
_SECRET_CHARS = frozenset(string.ascii_letters + string.digits + "-_.")


def _is_function_name(name: str) -> bool:
    """The contract's DNS label: 1 to 63 of [a-z0-9-], not starting or ending with '-'."""
    return 0 < len(name) <= 63 and set(name) <= _FUNCTION_CHARS and "-" not in (name[0], name[-1])


def _is_secret_name(name: str) -> bool:
    """1 to 50 of [a-zA-Z0-9-_.], starting and ending with a letter or digit."""
    return 0 < len(name) <= 50 and set(name) <= _SECRET_CHARS and name[0] not in "-_." and name[-1] not in "-_."


function_names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)
secret_names = st.from_regex(r"[a-zA-Z0-9]([-_.a-zA-Z0-9]{0,48}[a-zA-Z0-9])?", fullmatch=True)


@st.composite
def _spoiled(draw, valid, bad_chars: str, edge_chars: str, limit: int) -> str:
    """A valid name made invalid: a bad or non-ASCII character, a bad first or last character,
    one character too many (or more), or nothing at all."""
    name = draw(valid)
    kind = draw(st.sampled_from(["inside", "edge", "long", "empty"]))
    if kind == "inside":
        char = draw(st.one_of(st.sampled_from(bad_chars), st.characters(min_codepoint=128)))
        at = draw(st.integers(0, len(name)))
        return name[:at] + char + name[at:]
    if kind == "edge":
        char = draw(st.sampled_from(edge_chars))
        return draw(st.sampled_from([char + name, name + char]))
    if kind == "long":
        return (name * (limit // len(name) + 2))[: draw(st.integers(limit + 1, limit + 20))]
    return ""


NAME_RULES = {
    "function": (function_name_error, _is_function_name, function_names, _spoiled(function_names, "AZ_.:/@ \n\t", "-", 63)),
    "secret": (secret_name_error, _is_secret_name, secret_names, _spoiled(secret_names, ":/@+ \n\t", "-_.", 50)),
}
_name_soup = st.text(alphabet=st.one_of(st.sampled_from(string.ascii_letters + string.digits + "-_. "), st.characters()),
                     max_size=70)


@pytest.mark.parametrize("kind", NAME_RULES)
@given(data=st.data())
def test_every_valid_name_is_accepted(kind, data):
    error_of, _, valid, _ = NAME_RULES[kind]
    assert error_of(data.draw(valid)) is None


@pytest.mark.parametrize("kind", NAME_RULES)
@given(data=st.data())
def test_invalid_names_are_refused_with_a_message_quoting_them(kind, data):
    error_of, oracle, _, spoiled = NAME_RULES[kind]
    name = data.draw(spoiled)
    assert not oracle(name)
    error = error_of(name)
    assert error is not None and repr(name) in error


@pytest.mark.parametrize("kind", NAME_RULES)
@given(data=st.data())
def test_name_checks_agree_with_the_written_rule(kind, data):
    error_of, oracle, valid, spoiled = NAME_RULES[kind]
    name = data.draw(st.one_of(valid, spoiled, _name_soup))
    assert (error_of(name) is None) == oracle(name)


# ---------------------------------------------------------------------------------------------
# Image references and registry credentials
# ---------------------------------------------------------------------------------------------

_runs = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=6)


@st.composite
def _components(draw) -> str:
    """A path component: lower-case runs joined by '.', '_', '__' or dashes."""
    parts = [draw(_runs)]
    for _ in range(draw(st.integers(0, 2))):
        parts += [draw(st.sampled_from([".", "_", "__", "-", "--"])), draw(_runs)]
    return "".join(parts)


paths = st.lists(_components(), min_size=1, max_size=4).map("/".join)
_host_labels = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?", fullmatch=True)
_ports = st.integers(0, 65535).map(lambda port: f":{port}")
_optional_ports = st.one_of(st.just(""), _ports)
# Hosts Docker reads as a registry: dotted, with a port, or localhost.
registries = st.one_of(
    st.builds(lambda labels, port: ".".join(labels) + port, st.lists(_host_labels, min_size=2, max_size=3), _optional_ports),
    st.builds(str.__add__, _host_labels, _ports),
    _optional_ports.map("localhost".__add__),
    st.sampled_from(HUB_ALIASES),
)
tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}", fullmatch=True)
digests = st.from_regex(r"[0-9a-f]{64}", fullmatch=True).map("sha256:".__add__)
_DOCKER_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def _docker_split(name: str) -> tuple[str, str]:
    """Docker's splitDockerDomain, without the ``library/`` prefix: (registry, repository)."""
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return (HUB if first in HUB_ALIASES else first), rest
    return HUB, name


@st.composite
def references(draw) -> tuple[str, str, str, str | None, str | None]:
    """(reference, registry, repository, tag, digest) from generated parts."""
    registry = draw(st.one_of(st.none(), registries))
    path = draw(paths)
    first = path.split("/")[0]
    # A first component with '.' and '_' is no host name: Docker's own reading of "a.b_c/d" is ill-defined.
    if registry is None and "/" in path and "." in first and "_" in first:
        registry = "registry.example.com"
    name = f"{registry}/{path}" if registry else path
    tag = draw(st.one_of(st.none(), tags))
    digest = draw(st.one_of(st.none(), digests))
    reference = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    return (reference, *_docker_split(name), tag, digest)


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


# ---------------------------------------------------------------------------------------------
# Quantities
# ---------------------------------------------------------------------------------------------

_MEMORY_SHIFT = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40}


@given(
    st.integers(0, 10**6),
    st.one_of(st.none(), st.integers(0, 10**6 - 1).map(str)),
    st.sampled_from(["", "k", "K", "m", "M", "g", "G", "t", "T"]),
    st.sampled_from(["", "i", "I"]),
    st.sampled_from(["", "b", "B"]),
    st.sampled_from(["", " ", "  "]),
)
def test_memory_is_the_number_times_a_binary_multiple(whole, fraction, unit, binary, byte, space):
    if not unit:
        binary = ""  # "12i" is not a quantity.
    text = f"{whole}{'.' + fraction if fraction is not None else ''}{space}{unit}{binary}{byte}"
    if not (unit or binary or byte):
        text = text.rstrip()
    exact = (Fraction(f"{whole}.{fraction}") if fraction is not None else Fraction(whole)) * 2 ** _MEMORY_SHIFT[unit.lower()]
    if math.floor(exact) == 0:
        with pytest.raises(ValueError):
            parse_memory(text)
    else:
        assert parse_memory(text) == math.floor(exact), text


@given(st.integers(0, 10**4), st.one_of(st.none(), st.text(alphabet=string.digits, min_size=1, max_size=12)), st.booleans())
def test_cpu_is_nano_cpus_of_cores_or_millicores(whole, fraction, milli):
    text = f"{whole}{'.' + fraction if fraction is not None else ''}{'m' if milli else ''}"
    nano = math.floor(Fraction(text.rstrip("m")) * 10**9 / (1000 if milli else 1))
    if nano == 0:
        with pytest.raises(ValueError):
            parse_cpu(text)
    else:
        assert parse_cpu(text) == nano


@given(st.integers(1, 10**9))
def test_millicores_and_cores_agree(milli):
    assert parse_cpu(f"{milli}m") * 1000 == parse_cpu(str(milli))
    assert parse_cpu(f"{milli}m") == parse_cpu(f"{milli // 1000}.{milli % 1000:03d}")


_quantity_soup = st.text(alphabet=st.one_of(st.sampled_from("0123456789.mMkKgGtTiIbB -+e"), st.characters()), max_size=14)


@given(_quantity_soup)
def test_quantity_parsers_return_positive_integers_or_raise_value_error(text):
    for parse in (parse_memory, parse_cpu):
        try:
            value = parse(text)
        except ValueError:
            continue
        assert isinstance(value, int) and value > 0


# ---------------------------------------------------------------------------------------------
# Labels, annotations and the rest of the FunctionDeployment, through the spec and back
# ---------------------------------------------------------------------------------------------

_SPECIAL_LABELS = {LABEL_FUNCTION, LABEL_FAAS_FUNCTION, LABEL_SCALE_MIN, LABEL_SCALE_MAX, LABEL_SCALE_FACTOR, LABEL_SCALE_ZERO}


def _free_label(key: str) -> bool:
    return key not in _SPECIAL_LABELS and not key.startswith((ANNOTATION_PREFIX, GATEWAY_LABEL_PREFIX))


_near_reserved = ["com.openfaas.annotations", "com.openfaas.gateway", "com.openfaas.scale", "com.openfaas", "faas_function2"]
# com.openfaas.function is left out: the schema accepts it (when equal to the name) but the status
# never reports it; the contract only promises faas_function.
labels = st.dictionaries(st.one_of(st.sampled_from(_near_reserved), st.text(min_size=1, max_size=20)).filter(_free_label),
                         st.text(max_size=20), max_size=5)
annotations = st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=20), max_size=5)


def _status(deployment):
    versions = [SecretVersion(name, 1, f"id-{name}", f"{name}-v1", "openfaas-fn") for name in deployment.secrets or []]
    spec = build_service_spec(
        deployment, namespace="openfaas-fn", default="openfaas-fn", network="func_functions", replicas=1, secrets=versions
    )
    return function_status({"ID": "s1", "Spec": spec}, [], "openfaas-fn")


@given(function_names, labels, annotations, st.booleans())
def test_labels_and_annotations_round_trip(name, given_labels, given_annotations, with_faas_label):
    if with_faas_label:
        given_labels = {**given_labels, LABEL_FAAS_FUNCTION: name}
    body = {"service": name, "image": "fn:1", "labels": given_labels, "annotations": given_annotations}
    status = _status(DEPLOYMENT.load(body))
    expected_labels = {**given_labels, LABEL_FAAS_FUNCTION: name}
    assert (status.labels, status.annotations) == (expected_labels, given_annotations)
    out = STATUS.dump(status)
    assert (out["labels"], out["annotations"]) == (expected_labels, given_annotations)


_forbidden_labels = st.one_of(
    st.builds(lambda prefix, rest, value: (prefix + rest, value),
              st.sampled_from([ANNOTATION_PREFIX, GATEWAY_LABEL_PREFIX]), st.text(max_size=10), st.text(max_size=10)),
    st.tuples(st.sampled_from([LABEL_FUNCTION, LABEL_FAAS_FUNCTION]), st.text(max_size=10)),
)


@given(function_names, labels, _forbidden_labels)
def test_reserved_labels_are_refused_as_a_labels_error(name, others, forbidden):
    key, value = forbidden
    assume(not (key in (LABEL_FUNCTION, LABEL_FAAS_FUNCTION) and value == name))  # The function's own name is allowed there.
    with pytest.raises(ValidationError) as caught:
        DEPLOYMENT.load({"service": name, "image": "fn:1", "labels": {**others, key: value}})
    assert "labels" in caught.value.messages


_env_names = st.text(min_size=1, max_size=10).filter(lambda key: "=" not in key and "\x00" not in key)
# Swarm's constraint grammar: a key of 2+ characters not starting with a digit.
_constraints = st.builds("{} {} {}".format, st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{1,19}", fullmatch=True),
                         st.sampled_from(["==", "!="]), st.from_regex(r"[a-z0-9][a-z0-9 ]{0,10}", fullmatch=True))
_memory = st.builds("{}{}".format, st.integers(6, 4096), st.sampled_from(["Mi", "M", "mb"]))
_cpu = st.one_of(st.integers(1, 8000).map("{}m".format), st.sampled_from(["0.5", "1", "2.25"]))
_resources = st.fixed_dictionaries({}, optional={"memory": _memory, "cpu": _cpu})


@settings(max_examples=60)
@given(
    function_names,
    references().map(lambda parts: parts[0]).filter(lambda reference: len(reference) <= 255),
    st.dictionaries(_env_names.filter(lambda key: key != "fprocess"), st.text(max_size=10), max_size=4),
    st.one_of(st.none(), st.text(max_size=10)),
    st.lists(_constraints, max_size=3),
    st.lists(secret_names, max_size=3),
    st.one_of(st.none(), _resources),
    st.one_of(st.none(), _resources),
    st.booleans(),
)
def test_the_status_reports_what_was_deployed(name, image, env, process, constraints, secrets, limits, requests, read_only):
    body = {"service": name, "image": image, "envVars": env, "envProcess": process, "constraints": constraints,
            "secrets": secrets, "limits": limits, "requests": requests, "readOnlyRootFilesystem": read_only}
    status = _status(DEPLOYMENT.load(body))
    # An empty envProcess is Go's "not set": the image's own process stays.
    assert (status.name, status.image, status.env_process) == (name, image, process or None)
    assert status.env_vars == (env or None)
    assert status.constraints == constraints
    assert sorted(status.secrets) == sorted(set(secrets))
    assert status.limits == (Resources(**limits) if limits else None)
    assert status.requests == (Resources(**requests) if requests else None)
    assert status.read_only_root_filesystem is read_only


# "envVars become env", fprocess included when envProcess is absent (it used to be dropped); envProcess wins.
@given(st.dictionaries(st.one_of(st.just("fprocess"), _env_names), st.text(max_size=10), max_size=4),
       st.one_of(st.none(), st.text(max_size=10)))
@example({"fprocess": "cat"}, None)
def test_every_env_var_reaches_the_container(env, process):
    deployment = DEPLOYMENT.load({"service": "fn", "image": "fn:1", "envVars": env, "envProcess": process})
    spec = build_service_spec(deployment, namespace="ns", default="ns", network="n", replicas=1, secrets=[])
    container = spec["TaskTemplate"]["ContainerSpec"]
    given_env = dict(item.partition("=")[::2] for item in container["Env"])
    assert given_env == {**env, **({"fprocess": process} if process else {})}


# ---------------------------------------------------------------------------------------------
# Scaling labels and the alert rule
# ---------------------------------------------------------------------------------------------


def _contract_new(status: str, current: int, maximum: int, minimum: int, factor: int) -> int:
    """CONTRACT.md, word for word: step = ceil(max / 100 * factor) in floating point."""
    step = math.ceil(float(maximum) / 100.0 * float(factor))
    if status == "firing" and step > 0:
        return min(current + step, maximum)
    return minimum


@st.composite
def _scaling(draw) -> tuple[int, int, int]:
    low, high = draw(st.integers(0, MAX_REPLICAS)), draw(st.integers(1, MAX_REPLICAS))
    return min(low, high), max(low, high), draw(st.integers(0, 100))


def _policy(minimum: int, maximum: int, factor: int) -> ScalingPolicy:
    # Blanks around a number are tolerated.
    labels = {LABEL_SCALE_MIN: str(minimum), LABEL_SCALE_MAX: f" {maximum} ", LABEL_SCALE_FACTOR: str(factor)}
    policy = ScalingPolicy.from_labels(labels)
    assert (policy.minimum, policy.maximum, policy.factor, policy.max_is_set) == (minimum, maximum, factor, True)
    return policy


@given(st.sampled_from(["firing", "resolved"]), st.integers(0, MAX_REPLICAS), _scaling())
@example("firing", 1, (1, 28, 25))  # 28 / 100 * 25 == 7.000000000000001: step 8, new 9.
def test_alert_target_is_the_contract_formula(status, current, scaling):
    minimum, maximum, factor = scaling
    expected = _contract_new(status, current, maximum, minimum, factor)
    assert alert_target(status, current, _policy(minimum, maximum, factor)) == expected


@given(st.sampled_from(["firing", "resolved"]), st.integers(0, MAX_REPLICAS), _scaling())
def test_alert_target_bounds(status, current, scaling):
    minimum, maximum, factor = scaling
    new = alert_target(status, current, _policy(minimum, maximum, factor))
    assert new <= maximum
    if status == "resolved" or factor == 0:
        assert new == minimum
    elif current < maximum:
        assert new > current  # Firing never scales down, and always moves below the maximum...
        assert new >= minimum or current < minimum  # ...but does not jump a count below the minimum to it.
    else:
        assert new == maximum


@given(st.integers(1, MAX_REPLICAS - 1), st.integers(1, MAX_REPLICAS - 1))
def test_minimum_above_maximum_is_refused_naming_both_labels(maximum, gap):
    minimum = min(maximum + gap, MAX_REPLICAS)
    with pytest.raises(ValueError, match=re.escape(LABEL_SCALE_MIN)) as caught:
        ScalingPolicy.from_labels({LABEL_SCALE_MIN: str(minimum), LABEL_SCALE_MAX: str(maximum)})
    assert LABEL_SCALE_MAX in str(caught.value)


# The range of each whole-number label, and the default maximum a lone minimum must not exceed.
_LABEL_RANGES = {LABEL_SCALE_MIN: (0, DEFAULT_SCALE_MAX), LABEL_SCALE_MAX: (1, MAX_REPLICAS), LABEL_SCALE_FACTOR: (0, 100)}


def _good_scale_label(label: str, text: str) -> bool:
    """The labels' rule as CONTRACT.md words it: a whole number in range, or true/false."""
    bare = text.strip()
    if label == LABEL_SCALE_ZERO:
        return bare.lower() in ("true", "false")
    low, high = _LABEL_RANGES[label]
    return 0 < len(bare) <= 9 and all(char in string.digits for char in bare) and low <= int(bare) <= high


_scale_label_texts = st.one_of(
    st.text(alphabet=st.one_of(st.sampled_from("0123456789 +-²①٣"), st.characters()), max_size=6),
    st.builds("{}{}{}".format, st.sampled_from(["", " ", "\t"]), st.integers(-5, MAX_REPLICAS + 5), st.sampled_from(["", " "])),
    st.sampled_from(["true", "false", " TRUE", "False ", "yes", "1", "0"]),
)


# A bad scale label is a ValueError naming the label, also for "²" (isdigit() but not int()) and huge digit runs;
# a good one is read.
@given(st.sampled_from([LABEL_SCALE_MIN, LABEL_SCALE_MAX, LABEL_SCALE_FACTOR, LABEL_SCALE_ZERO]), _scale_label_texts)
@example(LABEL_SCALE_MAX, "²")
@example(LABEL_SCALE_FACTOR, "1" * 5000)
@example(LABEL_SCALE_MIN, "21")
@example(LABEL_SCALE_MAX, " 7 ")
def test_scaling_labels_are_read_or_refused_naming_the_label(label, text):
    if _good_scale_label(label, text):
        ScalingPolicy.from_labels({label: text})
    else:
        with pytest.raises(ValueError, match=re.escape(label)):
            ScalingPolicy.from_labels({label: text})


# ---------------------------------------------------------------------------------------------
# Timestamps
# ---------------------------------------------------------------------------------------------


def _canonical(moment: datetime, nanos: int) -> str:
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{nanos:09d}Z")


@st.composite
def _fractions(draw) -> tuple[str, int]:
    """('' or '.<1 to 9 digits>', nanoseconds)."""
    digits = draw(st.integers(0, 9))
    if digits == 0:
        return "", 0
    value = draw(st.integers(0, 10**digits - 1))
    return f".{value:0{digits}d}", value * 10 ** (9 - digits)


def _moments(first_year: int = 1, last_year: int = 9999):
    moments = st.datetimes(datetime(first_year, 1, 1), datetime(last_year, 12, 31, 23, 59, 59))
    return moments.map(lambda moment: moment.replace(microsecond=0))


@given(_moments(1000, 9998), _fractions(), st.integers(-(24 * 60 - 1), 24 * 60 - 1), st.sampled_from("Tt "))
def test_any_offset_normalises_to_the_same_utc_instant(utc, fraction, offset, separator):
    text_fraction, nanos = fraction
    local = utc + timedelta(minutes=offset)
    sign = "+" if offset >= 0 else "-"
    zone = f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    text = f"{_canonical(local, 0)[:10]}{separator}{_canonical(local, 0)[11:19]}{text_fraction}{zone}"
    assert parse_rfc3339(text) == (calendar.timegm(utc.timetuple()), nanos)
    assert normalise(text) == _canonical(utc, nanos)


# The canonical form is fixed-width, also before the year 1000 (strftime's %Y does not pad).
@given(_moments(), _fractions())
@example(datetime(999, 12, 31, 23, 59, 59), ("", 0))
def test_normalised_timestamps_are_canonical_and_stable(utc, fraction):
    text_fraction, nanos = fraction
    canonical = normalise(f"{_canonical(utc, 0)[:19]}{text_fraction}Z")
    assert canonical == _canonical(utc, nanos)
    assert normalise(canonical) == canonical


@given(_moments(1000, 9999), _fractions())
def test_docker_timestamps_take_the_fast_path_to_the_same_result(utc, fraction):
    text_fraction, nanos = fraction
    text = f"{_canonical(utc, 0)[:19]}{text_fraction.rstrip('0').rstrip('.')}Z"
    assert from_docker(text) == normalise(text) == _canonical(utc, nanos)


_edge_timestamps = st.builds(
    "{}T{}{}".format,
    st.sampled_from(["0001-01-01", "9999-12-31", "2026-02-29", "2024-02-29", "2026-13-01"]),
    st.sampled_from(["00:00:00", "23:59:59", "24:00:00", "23:59:60"]),
    st.one_of(st.sampled_from(["Z", "+00:00"]), st.from_regex(r"[+-][0-9]{2}:[0-9]{2}", fullmatch=True)),
)


_CANONICAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}Z")
_timestamp_soup = st.text(alphabet=st.one_of(st.sampled_from("0123456789-:T.Z+ "), st.characters()), max_size=30)


# An offset that moves a date out of range is a ValueError (a 400 naming `since`), not an OverflowError (a 500).
@given(st.one_of(_edge_timestamps, _timestamp_soup))
@example("0001-01-01T00:00:00+01:00")
@example("9999-12-31T23:59:59-00:01")
def test_timestamp_parsing_raises_only_value_error(text):
    try:
        normalised = normalise(text)
    except ValueError:
        pass
    else:
        assert _CANONICAL.fullmatch(normalised), normalised
