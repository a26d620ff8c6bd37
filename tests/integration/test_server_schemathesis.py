"""Schemathesis over the served OpenAPI schema against a live server: no 5xx, responses as documented."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from server_support import fake_settings, live_server, wait_ready  # noqa: E402

from finesift.server.app import create_app  # noqa: E402

pytestmark = pytest.mark.service
KEY = "schemathesis-key"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# Limits below the defaults keep generated requests small and let schemathesis reach them.
SETTINGS = fake_settings(api_key=KEY, max_inputs=64, max_documents=64, max_body_bytes=256 * 1024)
schema = schemathesis.openapi.from_dict(create_app(SETTINGS).openapi())


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    # Knowledge bases the generated requests create live in a temporary home.
    home = tmp_path_factory.mktemp("schemathesis-home")
    app = create_app(SETTINGS.model_copy(update={"home": home}))
    with live_server(app) as (url, _):
        wait_ready(app)
        yield url


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_api_never_fails_with_5xx(case, base_url):
    response = case.call(base_url=base_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    # 413 (a body over server.max_body_bytes) refuses a request before its schema is read: a rejection,
    # though not one of the statuses negative_data_rejection expects for schema-violating data.
    too_large = response.status_code == 413
    checks = [c for c in CHECKS if not (too_large and c is negative_data_rejection)]
    case.validate_response(response, checks=checks)
