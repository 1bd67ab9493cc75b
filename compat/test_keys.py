"""Router keys with limits (`keys:`) seen through the official OpenAI SDK.

A router with three keys in `keys:` (given as SHA-256 digests): one with an
`rpm`, one with a tiny daily budget, one that may call only one model. The
SDK must see a refused request as its usual exception classes
(`RateLimitError`, `PermissionDeniedError`) with OpenAI's headers, and its
own retry logic must agree with the router's advice: a rate limit carries
an honest `retry-after` and no `x-should-retry`, so the SDK waits and
retries (and succeeds); a spent budget says `x-should-retry: false`, so
the SDK does not spend its retries on it. (`proxy.rs` `advise_no_retry`
adds `x-should-retry: false` only after the router itself made two or more
attempts; a refused key made none, so the two never disagree.)
"""

from __future__ import annotations

import hashlib
import textwrap
from typing import Iterator

import openai
import pytest

from conftest import Router, Sent, _finish, _start, make_client

LIMITED_KEY = "sk-sy-compat-limited-0123456789abcdef"
RETRY_KEY = "sk-sy-compat-retry-0123456789abcdef"
BUDGET_KEY = "sk-sy-compat-budget-0123456789abcdef"
NARROW_KEY = "sk-sy-compat-narrow-0123456789abcdef"
#: `rpm` of LIMITED_KEY.
RPM = 3
#: `rpm` of RETRY_KEY: high enough that the wait for one more is about 1 s.
RETRY_RPM = 60
HELLO = [{"role": "user", "content": "hello"}]


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="module")
def keys_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    config = textwrap.dedent(f"""\
        upstreams:
          builtin:
            provider: mock
        models:
          demo:
            targets: [{{ upstream: builtin }}]
            pricing: {{ input_per_million: 1000, output_per_million: 1000 }}
          other:
            targets: [{{ upstream: builtin }}]
        keys:
          - {{ name: limited, sha256: {digest(LIMITED_KEY)}, rpm: {RPM}, tpm: 100000 }}
          - {{ name: retry, sha256: {digest(RETRY_KEY)}, rpm: {RETRY_RPM} }}
          - {{ name: budget, sha256: {digest(BUDGET_KEY)}, budget: {{ daily_usd: 0.000001 }} }}
          - {{ name: narrow, sha256: {digest(NARROW_KEY)}, models: [other] }}
        """)
    r = _start("keys", config, tmp_path_factory)
    yield r
    _finish(r)


def test_a_rate_limited_key_gets_rate_limit_error_with_openai_headers(keys_router: Router):
    with make_client(keys_router.base_url, api_key=LIMITED_KEY) as c:
        for left in range(RPM - 1, -1, -1):
            raw = c.chat.completions.with_raw_response.create(model="demo", messages=HELLO)
            assert raw.headers["x-ratelimit-limit-requests"] == str(RPM)
            assert raw.headers["x-ratelimit-remaining-requests"] == str(left)
            assert raw.headers["x-ratelimit-limit-tokens"] == "100000"
            assert "x-ratelimit-reset-requests" in raw.headers
            assert raw.parse().choices[0].message.content
        with pytest.raises(openai.RateLimitError) as info:
            c.chat.completions.create(model="demo", messages=HELLO)
    e = info.value
    assert e.status_code == 429
    assert e.code == "rate_limit_exceeded"
    assert e.type == "requests"
    headers = e.response.headers
    assert headers["x-ratelimit-limit-requests"] == str(RPM)
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert 1 <= int(headers["retry-after"]) <= 60 // RPM
    # The SDK may retry it after retry-after: the router does not forbid it.
    assert "x-should-retry" not in headers
    assert LIMITED_KEY not in e.response.text


def test_the_sdk_waits_out_retry_after_and_then_succeeds(keys_router: Router):
    with make_client(keys_router.base_url, api_key=RETRY_KEY) as c:
        for _ in range(RETRY_RPM):
            c.chat.completions.create(model="demo", messages=HELLO)
    sent = Sent()
    with make_client(keys_router.base_url, api_key=RETRY_KEY, max_retries=2, sent=sent) as c:
        raw = c.chat.completions.with_raw_response.create(model="demo", messages=HELLO)
    # First a 429 with retry-after: 1, then the SDK's retry fits.
    assert len(sent) == 2
    assert raw.http_response.status_code == 200
    assert raw.parse().choices[0].message.content


def test_a_spent_budget_is_insufficient_quota_and_the_sdk_does_not_retry(keys_router: Router):
    with make_client(keys_router.base_url, api_key=BUDGET_KEY) as c:
        c.chat.completions.create(model="demo", messages=HELLO)  # spends the budget
    sent = Sent()
    with make_client(keys_router.base_url, api_key=BUDGET_KEY, max_retries=2, sent=sent) as c:
        with pytest.raises(openai.RateLimitError) as info:
            c.chat.completions.create(model="demo", messages=HELLO)
    e = info.value
    assert e.code == "insufficient_quota"
    assert "UTC midnight" in e.message
    assert e.response.headers["x-should-retry"] == "false"
    assert len(sent) == 1  # the SDK obeyed x-should-retry: false


def test_a_model_the_key_may_not_use_is_permission_denied(keys_router: Router):
    with make_client(keys_router.base_url, api_key=NARROW_KEY) as c:
        assert c.chat.completions.create(model="other", messages=HELLO).choices
        with pytest.raises(openai.PermissionDeniedError) as info:
            c.chat.completions.create(model="demo", messages=HELLO)
    assert info.value.code == "model_not_allowed"
    assert "`demo`" in info.value.message


def test_an_unknown_key_is_authentication_error(keys_router: Router):
    with make_client(keys_router.base_url, api_key="sk-sy-not-a-key") as c:
        with pytest.raises(openai.AuthenticationError) as info:
            c.chat.completions.create(model="demo", messages=HELLO)
    assert info.value.code == "invalid_api_key"
