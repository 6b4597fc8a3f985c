"""A chart's data set inside a page's ``<script>`` cannot end the script, whatever text
it carries — a model's name, a security's — and reads back as the same data."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from poise.web.views import script_json

HOSTILE = "</script><script>alert(1)</script>"


def test_script_json_when_a_name_would_close_the_script_then_it_cannot() -> None:
    text = script_json({"data": [{"x": [HOSTILE], "name": "<!--"}]})
    assert "</" not in text
    assert "<!--" not in text
    assert json.loads(text) == {"data": [{"x": [HOSTILE], "name": "<!--"}]}


@given(st.recursive(st.text() | st.integers() | st.floats(allow_nan=False),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)))  # fmt: skip
def test_script_json_when_any_data_then_no_angle_bracket_and_the_same_data_back(
    data: object,
) -> None:
    text = script_json(data)
    assert "<" not in text
    assert json.loads(text) == data
