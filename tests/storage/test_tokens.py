"""Write and owner tokens: a resent write recognises its own applied copy by its token,
and a lease is fenced by its owner's, so no two calls or owners may share one."""

from __future__ import annotations

import os
import random

from reactor.storage._base import new_token


def test_tokens_do_not_follow_the_applications_random_seed() -> None:
    random.seed(7)
    first = new_token()
    random.seed(7)
    assert new_token() != first
    assert len({new_token() for _ in range(10_000)}) == 10_000


def test_a_forked_child_draws_other_tokens_than_its_parent() -> None:
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        os.write(write, new_token().encode())
        os._exit(0)
    os.close(write)
    parent_token = new_token()
    with os.fdopen(read) as pipe:
        child_token = pipe.read()
    os.waitpid(child, 0)
    assert child_token != parent_token
