"""Picking, among a source's repositories, the first that can serve a request."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from lifeboat.errors import LifeboatError
from lifeboat.repo.catalog import Repository

log = logging.getLogger(__name__)

T = TypeVar("T")


def first_that_serves(
    repos: Sequence[Repository], attempt: Callable[[Repository], T]
) -> tuple[Repository, T]:
    """The first repository, in order, for which attempt() succeeds, and what it returned.
    One that cannot serve (unreachable, lacking the backup) is skipped with a warning; when
    none can, the first repository's error is raised."""
    errors: list[LifeboatError] = []
    for repo in repos:
        try:
            return repo, attempt(repo)
        except LifeboatError as exc:
            if len(repos) > 1:
                log.warning("repository %s cannot serve this: %s", repo.name, exc.message)
            errors.append(exc)
    raise errors[0]
