"""Package-wide promises: a light core, a current model id, a virtual clock that is exact."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import typing
import warnings

import anthropic
import pytest
from anthropic._data.deprecated_models import DEPRECATED_MODELS

import resilience
from resilience import FALLBACK_MODEL, MODEL, SystemClock, VirtualClock


def test_import_resilience_pulls_in_no_heavy_modules() -> None:
    code = ("import sys, resilience; heavy = {'numpy', 'matplotlib', 'anthropic', 'httpx2', "
            "'respx'} & set(sys.modules); print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("model", [MODEL, FALLBACK_MODEL])
def test_model_ids_are_current_in_the_installed_sdk(model: str) -> None:
    assert model not in DEPRECATED_MODELS
    assert model in typing.get_args(typing.get_args(anthropic.types.ModelParam)[0])


def test_the_sdk_does_not_warn_about_our_model() -> None:
    import httpx2

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={
            "id": "msg_1", "type": "message", "role": "assistant", "model": MODEL,
            "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}})

    client = anthropic.Anthropic(api_key="test-key-not-real", max_retries=0,
                                 http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client.messages.create(model=MODEL, max_tokens=8,
                               messages=[{"role": "user", "content": "hi"}])


def test_public_names_are_exported() -> None:
    for name in resilience.__all__:
        assert hasattr(resilience, name), name


def test_virtual_clock_moves_only_when_told_and_records_sleeps() -> None:
    clock = VirtualClock(start=5.0)
    assert clock.now() == 5.0
    clock.sleep(1.5)
    clock.advance(0.5)
    asyncio.run(clock.asleep(2.0))
    assert (clock.now(), clock.sleeps) == (9.0, [1.5, 2.0])
    with pytest.raises(ValueError, match="sleep length must be >= 0"):
        clock.sleep(-1)
    with pytest.raises(ValueError, match="start must be a finite number"):
        VirtualClock(start=float("nan"))


def test_system_clock_is_monotonic() -> None:
    clock = SystemClock()
    first = clock.now()
    assert clock.now() >= first
    assert isinstance(clock, resilience.Clock)
    assert isinstance(VirtualClock(), resilience.Clock)
