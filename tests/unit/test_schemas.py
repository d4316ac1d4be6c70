"""app.web.schemas on its own: how a request body is read, whatever its headers say, and how a fault is put into words."""

from __future__ import annotations

import dataclasses
import json

import pytest
from flask import Flask, request
from hypothesis import assume, given
from hypothesis import strategies as st
from marshmallow import ValidationError

from app.domain.models import (
    ANNOTATION_PREFIX,
    GATEWAY_LABEL_PREFIX,
    LABEL_FAAS_FUNCTION,
    LABEL_FUNCTION,
    FunctionStatus,
    Resources,
    Rollout,
    Usage,
)
from app.errors import InvalidRequest
from app.web import schemas
from tests.unit.helpers import DEPLOYMENT, function_names, labels

flask_app = Flask(__name__)


# `curl -d` sends JSON as a form; other clients send no type at all. The gateway reads it all the same.
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/json"])
def test_a_json_body_is_read_whatever_its_content_type(content_type):
    with flask_app.test_request_context(method="POST", data='{"functionName": "echo"}', content_type=content_type):
        assert schemas.load_body(schemas.DeleteFunctionSchema(), request) == {"functionName": "echo"}


# The parsers in app.domain.quantities and app.runtime.swarm.images say what they accept; the 400 quotes them.
@pytest.mark.parametrize("fields, sentence", [
    ({"limits": {"memory": "lots"}}, "Invalid limits.memory: 'lots' is not a memory quantity such as 128M, 128Mi, 1G or 512k."),
    ({"requests": {"cpu": "fast"}}, "Invalid requests.cpu: 'fast' is not a CPU quantity such as 0.5, 1 or 500m."),
    ({"image": "Not An Image"}, "Invalid image: 'Not An Image' is not a valid image reference such as functions/alpine:latest."),
])
def test_a_value_its_parser_refuses_is_refused_in_the_parsers_words(fields, sentence):
    body = json.dumps({"service": "echo", "image": "fn:1", **fields})
    with flask_app.test_request_context(method="POST", data=body):
        with pytest.raises(InvalidRequest) as refused:
            schemas.load_body(schemas.FunctionDeploymentSchema(), request)
    assert str(refused.value) == sentence


# A cron function's schedule is checked when it is deployed, not when it first falls due.
@pytest.mark.parametrize("annotations, labels, sentence", [
    ({"topic": "cron-function", "schedule": "0 0 * * * *"}, {},
     "Invalid annotations: annotation schedule takes standard five-field cron expressions"),
    ({"topic": "cron-function"}, {}, "Invalid annotations: annotation schedule must hold a cron expression"),
    ({"topic": "cron-function", "schedule": "0 9 * * *"}, {"com.openfaas.cron.timezone": "Berlin"},
     "Invalid labels: label com.openfaas.cron.timezone must name a time zone"),
    ({"topic": "cron-function", "schedule": "0 9 * * *"}, {"com.openfaas.cron.concurrency": "never"},
     "Invalid labels: label com.openfaas.cron.concurrency must be forbid or allow"),
])
def test_an_unusable_cron_schedule_is_a_400_naming_the_annotation_or_label(annotations, labels, sentence):
    body = json.dumps({"service": "nightly", "image": "fn:1", "annotations": annotations, "labels": labels})
    with flask_app.test_request_context(method="POST", data=body):
        with pytest.raises(InvalidRequest) as refused:
            schemas.load_body(schemas.FunctionDeploymentSchema(), request)
    assert refused.value.status == 400 and str(refused.value).startswith(sentence)


def test_a_cron_function_with_a_usable_schedule_deploys():
    annotations = {"topic": "cron-function", "schedule": "*/5 * * * *; 0 9 * * mon-fri"}
    labels = {"com.openfaas.cron.timezone": "Europe/Berlin", "com.openfaas.cron.concurrency": "allow"}
    loaded = DEPLOYMENT.load({"service": "nightly", "image": "fn:1", "annotations": annotations, "labels": labels})
    assert loaded.annotations == annotations


# The sentence is all a client learns about the rule, so it states the whole rule.
def test_a_refused_name_is_told_the_whole_rule():
    assert schemas.function_name_error("Echo") == (
        "'Echo' is not a valid function name: use at most 63 lower-case letters, digits and '-', "
        "starting and ending with a letter or digit"
    )
    assert schemas.secret_name_error("-k") == (
        "'-k' is not a valid secret name: use at most 50 letters, digits, '-', '_' and '.', "
        "starting and ending with a letter or digit"
    )
    assert schemas.function_name_error("echo") is None and schemas.secret_name_error("api.key_1") is None


@pytest.mark.parametrize("error_of, longest", [(schemas.function_name_error, 63), (schemas.secret_name_error, 50)])
def test_a_name_may_be_as_long_as_the_limit_and_no_longer(error_of, longest):
    assert error_of("a" * longest) is None
    assert error_of("a" * (longest + 1)) is not None


# marshmallow's nested messages, flattened into the one sentence of a 400.
@pytest.mark.parametrize("messages, sentence", [
    ({"service": ["Missing data for required field."], "limits": {"memory": ["too small."]}},
     "Invalid limits.memory: too small; service: Missing data for required field."),
    ({"_schema": ["give either value or rawValue, not both."]}, "Invalid give either value or rawValue, not both."),
    ({"envVars": {"A": {"value": ["Not a valid string."]}}}, "Invalid envVars.A: Not a valid string."),
    ({"labels": {"_schema": ["reserved."]}}, "Invalid labels: reserved."),
])
def test_validation_messages_become_one_sentence_naming_each_field(messages, sentence):
    assert schemas.describe_validation_error(messages) == sentence


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


def test_lists_of_statuses_dump_as_the_schema_does_keeping_each_unchanged_status_json():
    read = [
        FunctionStatus("a", "img:1", "fn", 1, 1, labels={"x": "1"}, env_vars={"E": "v"}, limits=Resources(memory="64m"),
                       rollout=Rollout("completed")),
        FunctionStatus("b", "img:2", "fn", 0, 0, secrets=["s"], constraints=["node.role==manager"]),
    ]
    dumper, schema = schemas.FunctionStatusesDumper(), schemas.FunctionStatusSchema()
    for count in (1, 2):
        shown = [dataclasses.replace(s, invocation_count=count, available_replicas=count, usage=Usage(1.5, 2e6))
                 for s in read]
        assert dumper.dump(read, shown) == schema.dump(shown, many=True)
    # The same status objects again: only the live fields are dumped anew.
    fixed = []
    dumper._fixed.dump = lambda status: fixed.append(status) or schema.dump(status)
    dumper.dump(read, read)
    assert fixed == []
    changed = [dataclasses.replace(read[0], image="img:3"), read[1]]
    assert dumper.dump(changed, changed) == schema.dump(changed, many=True)
    assert fixed == [changed[0]]
