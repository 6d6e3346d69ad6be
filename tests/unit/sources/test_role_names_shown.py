"""Role names in restore's messages are written as SQL would write them."""

from __future__ import annotations

from lifeboat.sources.postgres.restore_roles import shown


def test_plain_names_stay_as_they_are() -> None:
    assert shown(["wms_owner", "app$2"]) == "wms_owner, app$2"


def test_names_that_need_quoting_are_quoted() -> None:
    assert shown(["report reader", "wms.app", "Admin", 'say "hi"', "a, b"]) == (
        '"report reader", "wms.app", "Admin", "say ""hi""", "a, b"'
    )


def test_control_characters_cannot_split_the_line() -> None:
    text = shown(["two\nlines", "tab\there"])
    assert "\n" not in text and "\t" not in text
    assert text == '"two\\x0alines", "tab\\x09here"'
