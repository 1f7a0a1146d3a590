"""The browser helper's navigation: again after Chromium's "network changed", never otherwise."""

from __future__ import annotations

import pytest

from tests.support.browser import goto


class Page:
    def __init__(self, errors: list[str]) -> None:
        self.errors, self.visits = errors, 0

    def goto(self, url: str, **kwargs):
        self.visits += 1
        if self.errors:
            raise RuntimeError(self.errors.pop(0))
        return f"response of {url}"


def test_a_navigation_cut_by_a_network_change_is_made_again():
    page = Page(["Page.goto: net::ERR_NETWORK_CHANGED at https://u.mlhub.test/"])
    assert goto(page, "https://u.mlhub.test/") == "response of https://u.mlhub.test/"
    assert page.visits == 2


def test_any_other_error_and_the_last_attempt_are_raised():
    page = Page(["Page.goto: net::ERR_CONNECTION_REFUSED"])
    with pytest.raises(RuntimeError, match="REFUSED"):
        goto(page, "https://u.mlhub.test/")
    assert page.visits == 1
    page = Page(["net::ERR_NETWORK_CHANGED"] * 3)
    with pytest.raises(RuntimeError, match="NETWORK_CHANGED"):
        goto(page, "https://u.mlhub.test/")
    assert page.visits == 3
