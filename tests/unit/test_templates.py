"""Notification templates render from their files."""

from __future__ import annotations

import pytest

from notification_service.templates import render


def test_welcome_email_has_subject_and_body():
    rendered = render(
        "welcome", "email", {"shop_name": "Shop", "full_name": "Ada", "email": "ada@example.com"}
    )
    assert rendered.subject == "Welcome to Shop, Ada"
    assert rendered.text.startswith("Hello Ada,")
    assert "ada@example.com" in rendered.text


def test_a_missing_value_is_an_error_not_a_blank():
    with pytest.raises(KeyError):
        render("welcome", "email", {"shop_name": "Shop"})
