"""The whole API fuzzed from its own OpenAPI schema with Schemathesis, on real processes.

For every operation, valid and invalid requests (Schemathesis's examples, coverage and fuzzing
phases) must get no 5xx and an answer the schema documents: its status, its content type, its
body and headers; valid requests must be accepted and invalid ones refused. The two event
streams never end, so they are left out here (`test_stream_params.py` fuzzes their parameters).

The schema is the one the app builds in this process, so the tests exist at collection time; the
stack serves the very same (checked), and its tasks go to a queue no worker reads, so fuzzed
`long` tasks keep no worker busy. The run is derandomized: the same requests every time.
"""

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from taskstream.api.main import create_app
from taskstream.settings import Settings
from tests.support.processes import ROOT
from tests.support.stack import Stack

OPENAPI = create_app(Settings(_env_file=ROOT / ".env")).openapi()
STREAMS = r"/events$"
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")

schema = schemathesis.openapi.from_dict(OPENAPI).exclude(path_regex=STREAMS)
schema.config.generation.update(max_examples=50, deterministic=True, database="none")


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("fuzz"), api_env={"DEFAULT_QUEUE": "parked"})
    stack.start()
    assert stack.http.get("/openapi.json").json() == OPENAPI, "the stack serves another schema"
    yield stack
    stack.stop()


def test_the_streams_are_the_only_operations_left_out() -> None:
    left_out = [path for path in OPENAPI["paths"] if re.search(STREAMS, path)]
    assert left_out == ["/api/events", "/api/tasks/{task_id}/events"]


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_api(case: Any, fuzzed: Stack) -> None:
    # A key reused with another body is refused by design (422); a valid key gets made unique,
    # so that every valid request is judged on its own.
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and IDEMPOTENCY_KEY.fullmatch(key):
        case.headers["Idempotency-Key"] = (uuid.uuid4().hex + key)[:200]
    case.call_and_validate(base_url=fuzzed.api.url, timeout=30)
