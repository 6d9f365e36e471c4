"""The audio form's fields: OpenAI's form fields and the query parameters of Nexa's original route."""

from __future__ import annotations

import pytest
from fastapi.exceptions import RequestValidationError

from nexa_audio.params import parse_form


def test_empty_values_mean_not_given_and_the_last_repeat_wins() -> None:
    form = parse_form({"language": [""], "temperature": ["0.2", "0.4"], "response_format": ["srt"]})
    assert form.language is None and form.temperature == 0.4 and form.response_format == "srt"


def test_timestamp_granularities_in_both_spellings() -> None:
    form = parse_form({"timestamp_granularities[]": ["word"], "timestamp_granularities": ["segment"]})
    assert form.timestamp_granularities == ["word", "segment"]


@pytest.mark.parametrize("fields", [{"beam_size": ["0"]}, {"response_format": ["xml"]}, {"temperature": ["hot"]}])
def test_bad_fields_are_validation_errors_naming_the_form_field(fields: dict[str, list[str]]) -> None:
    with pytest.raises(RequestValidationError) as refused:
        parse_form(fields)
    assert refused.value.errors()[0]["loc"][0] == "form"
