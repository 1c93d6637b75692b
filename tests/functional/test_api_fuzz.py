"""Property-based API tests generated from /api/v1/openapi.json (schemathesis).

Every operation of the spec gets generated requests, valid (positive) and
invalid (negative), as an engineer (the role that may call the most): none
may answer 500, and every answer must match what the spec declares for its
status. The demo world is laid again before each operation that writes.
Invalid requests that got through would show as a 500 or a wrong answer here.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy.orm import Session

from ipam import users
from tests.conftest import restore, snapshot

EXAMPLES = 6  # per operation and mode: about 70 operations x 2 modes x 2 back-ends


def test_no_request_answers_500_and_answers_match_the_spec(web_app, world, engine):
    web_app.config["IPAM_SMTP_PORT"] = 9  # nothing listens: notification mail stays queued
    with Session(engine) as s:
        _token, secret = users.issue_token(s, "engineer", "fuzz", actor="test")
        s.commit()
    bearer = {"Authorization": f"Bearer {secret}"}
    laid = snapshot(engine)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", web_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 60  # the whole API, not a stray subset
    failures, statuses = [], []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            # Reads change nothing, and invalid requests are refused whole: lay the world
            # again only before the valid requests of an operation that writes.
            if operation.method.upper() != "GET" and mode is GenerationMode.POSITIVE:
                restore(engine, laid)

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case):
                response = case.call(headers=bearer)
                statuses.append(response.status_code)
                case.validate_response(
                    response, checks=[not_a_server_error, response_schema_conformance]
                )

            if mode is GenerationMode.NEGATIVE and not _has_input(operation):
                continue  # nothing to get wrong but the path, which Flask routes away
            try:
                check()
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect all, then report
                failures.append(f"{operation.label} ({mode.value}): {_first(exc)}")
    assert not failures, "\n\n".join(failures)
    # It did reach the views: successes and refusals both, many of each.
    assert sum(200 <= s < 300 for s in statuses) > 100
    assert sum(s == 422 for s in statuses) > 100


def _first(exc: BaseException) -> str:
    """The failure's first lines: what was wrong and the request that showed it."""
    text = str(exc)
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        text = "; ".join(str(e).splitlines()[0] for e in exc.exceptions) + " | " + text
    return text[:1200]


def _has_input(operation) -> bool:
    """Whether the operation takes a body or a query string (negative cases need one)."""
    return bool(operation.body) or any(p.location == "query" for p in operation.iter_parameters())
