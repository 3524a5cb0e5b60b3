"""Simulated sites (tests/simulated_sites.py) as fixtures: one model per session."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from simulated_sites import Site, SiteModel, draw_site
from simulated_sites import site_model as build_site_model


@pytest.fixture(scope="session")
def site_model() -> SiteModel:
    return build_site_model()


@pytest.fixture(scope="session")
def make_site(site_model: SiteModel) -> Callable[..., Site]:
    def make(
        prevalence: float, n: int = 600, seed: int = 10, shift: dict[str, float] | None = None
    ) -> Site:
        return draw_site(site_model, prevalence, n, seed, shift)

    return make
