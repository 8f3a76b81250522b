"""The ``fake_claude`` fixture works in a fresh project's tests (issue 9).

Each test writes a small project into a temporary folder and runs pytest on it in a new
process (``runpytest_subprocess``), so the fixture comes from the kit's ``pytest11`` entry
point exactly as in a project that installed the kit, not from this repository's conftest.
"""

from __future__ import annotations

import random
import re

import pytest

pytest_plugins = ["pytester"]

# -p no:randomly: the project's tests below run in file order (the last checks the others).
ARGS = ("-p", "no:randomly", "-p", "no:cacheprovider")

FRESH_PROJECT_TESTS = '''
import time

import anthropic._base_client as sdk_base
import pytest

from resilience import VirtualClock

SEEN = []
HI = [{"role": "user", "content": "Hi"}]


def test_the_fixture_is_an_open_fake_on_a_fresh_virtual_clock(fake_claude):
    assert type(fake_claude.clock) is VirtualClock and fake_claude.clock.now() == 0.0
    assert fake_claude.seed == 0 and fake_claude.calls == []
    assert sdk_base.time is not time  # the SDK sleeps on the virtual clock meanwhile
    fake_claude.respond("overloaded_error", "ok")
    fake_claude.client().messages.create(model=fake_claude.model, max_tokens=16, messages=HI)
    assert [call.status for call in fake_claude.calls] == [529, 200]
    print("RETRY_AT", repr(fake_claude.calls[1].time))
    SEEN.append(fake_claude)


def test_each_test_gets_a_new_fake_and_clock(fake_claude):
    first = SEEN[0]
    assert fake_claude is not first and fake_claude.clock is not first.clock
    assert fake_claude.clock.now() == 0.0 and fake_claude.calls == []
    SEEN.append(fake_claude)


def test_the_fakes_were_closed_after_their_tests():
    assert len(SEEN) == 2
    for api in SEEN:
        with pytest.raises(RuntimeError, match="inside its block"):
            api.client()
    assert sdk_base.time is time  # the SDK has its own sleep back
'''


def test_fake_claude_works_in_a_fresh_project(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_app=FRESH_PROJECT_TESTS)
    result = pytester.runpytest_subprocess(*ARGS, "-s")
    result.assert_outcomes(passed=3)
    # the fixture came from the installed distribution's pytest11 entry point (the fresh
    # project has no conftest), which pytest names in its header
    result.stdout.fnmatch_lines(["plugins:*resilient-claude-*"])
    retry_at = re.search(r"RETRY_AT (\S+)", result.stdout.str())
    assert retry_at is not None
    # seed 0: the SDK's first backoff is 0.5 s times its jitter 1 - 0.25 * random()
    expected = 0.5 * (1 - 0.25 * random.Random(0).random())
    assert float(retry_at.group(1)) == expected
