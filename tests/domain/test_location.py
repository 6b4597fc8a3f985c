"""Asset location: where each kind of asset costs least, and the firm's own ranking."""

from __future__ import annotations

from pathlib import Path

import pytest

from poise.domain.accounts import Registration
from poise.domain.errors import ValidationError
from poise.domain.location import Location, Score, read_location
from poise.domain.securities import Security, SecurityKind

TAXABLE, IRA, ROTH = Registration.TAXABLE, Registration.TRADITIONAL_IRA, Registration.ROTH_IRA


def security(security_id: str, asset_class: str, sub_class: str = "") -> Security:
    return Security(security_id, security_id, security_id, SecurityKind.ETF, asset_class, sub_class)


@pytest.mark.parametrize(
    ("held", "best"),
    [
        (security("BND", "fixed_income"), IRA),  # income taxed every year: tax-deferred first
        (security("VB", "us_equity", "small_cap"), ROTH),  # the highest growth: the Roth
        (security("VTI", "us_equity", "total_market"), TAXABLE),  # broad equity: taxable
        (security("VNQ", "real_estate"), IRA),
    ],
)
def test_cost_when_ranked_by_default_then_each_asset_is_cheapest_where_it_belongs(
    held: Security, best: Registration
) -> None:
    location = Location()
    costs = {r: location.cost(r, held) for r in (TAXABLE, IRA, ROTH)}
    assert min(costs, key=lambda r: costs[r]) is best


def test_score_when_an_id_a_sub_class_and_a_class_are_ranked_then_the_most_specific_wins() -> None:
    location = Location(
        {"us_equity": Score(0.2, 0.6), "small_cap": Score(0.3, 0.8), "VB": Score(0.5, 0.9)}
    )
    assert location.score(security("VB", "us_equity", "small_cap")) == Score(0.5, 0.9)
    assert location.score(security("IJR", "us_equity", "small_cap")) == Score(0.3, 0.8)
    assert location.score(security("VTI", "us_equity")) == Score(0.2, 0.6)
    assert location.score(security("GLD", "gold")) == location.default


def test_read_location_when_a_file_ranks_some_keys_then_they_replace_the_defaults_only(
    tmp_path: Path,
) -> None:
    path = tmp_path / "location.csv"
    path.write_text("key,inefficiency,growth\nmunicipal,0.1,0.1\nfixed_income,0.9,0.2\n")
    location = read_location(path)
    assert location.score(security("MUB", "fixed_income", "municipal")) == Score(0.1, 0.1)
    assert location.score(security("BND", "fixed_income")) == Score(0.9, 0.2)
    assert location.score(security("VTI", "us_equity")) == Score(0.2, 0.6)  # the default's


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "key,inefficiency,growth\nbonds,1.5,0.1\n",
            "line 2: a location inefficiency is between 0 and 1",
        ),
        ("key,inefficiency,growth\n,0.5,0.1\n", "line 2: no key"),
        ("key,inefficiency,growth\nbonds,high,0.1\n", "line 2"),
        ("key,inefficiency\nbonds,0.5\n", "line 2"),
    ],
)
def test_read_location_when_a_row_is_wrong_then_the_error_names_the_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "location.csv"
    path.write_text(text)
    with pytest.raises(ValidationError, match=message):
        read_location(path)
