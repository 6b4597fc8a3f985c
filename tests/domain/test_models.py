"""Model portfolios: weights that add up to exactly 1, sleeves, and tolerance bands."""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poise.domain.errors import ValidationError
from poise.domain.models import Band, Model, ModelTarget, TargetKind, resolve
from poise.domain.money import ZERO, D


def model(model_id: str, table: str) -> Model:
    """A model from lines like ``security VTI 0.70``, ``model EQ 0.60``, ``cash 0.05``."""
    targets = []
    for line in table.strip().splitlines():
        match line.split():
            case ["cash", weight]:
                targets.append(ModelTarget(TargetKind.CASH, "", D(weight)))
            case [kind, target_id, weight]:
                targets.append(ModelTarget(TargetKind(kind), target_id, D(weight)))
            case _:
                raise AssertionError(f"not a target line: {line!r}")
    return Model(model_id, model_id, tuple(targets))


def catalogue(*models: Model) -> dict[str, Model]:
    return {m.model_id: m for m in models}


EQUITY = model(
    "EQ",
    """
    security VTI  0.70
    security VXUS 0.20
    security SGOV 0.05
    cash          0.05
    """,
)
FIXED_INCOME = model(
    "FI",
    """
    security BND  0.80
    security SGOV 0.15
    cash          0.05
    """,
)
BALANCED = model(
    "BAL-60-40",
    """
    model EQ 0.60
    model FI 0.40
    """,
)


# --- weights ------------------------------------------------------------------------


def test_model_when_weights_add_up_to_exactly_one_then_it_is_built() -> None:
    built = model("M", "security VTI 0.6\nsecurity BND 0.35\ncash 0.05")

    assert built.cash_weight == D("0.05")
    assert [t.target_id for t in built.targets] == ["VTI", "BND", ""]


@pytest.mark.parametrize(
    "table",
    [
        pytest.param("security VTI 0.6\nsecurity BND 0.39", id="short-by-a-point"),
        pytest.param("security VTI 0.6\nsecurity BND 0.4\ncash 0.0001", id="over-by-a-bp"),
        pytest.param("security VTI 0.3333\nsecurity BND 0.3333\ncash 0.3333", id="thirds"),
    ],
)
def test_model_when_weights_do_not_add_up_to_exactly_one_then_validation_error(
    table: str,
) -> None:
    with pytest.raises(ValidationError, match="weights add up to"):
        model("M", table)


def test_model_when_asset_class_rows_carry_bands_then_they_add_no_weight() -> None:
    band = Band(absolute=D("0.05"))
    built = Model(
        "M",
        "M",
        (
            ModelTarget(TargetKind.SECURITY, "VTI", D("1")),
            ModelTarget(TargetKind.ASSET_CLASS, "us_equity", band=band),
        ),
    )

    assert built.class_bands == {"us_equity": band}
    assert built.cash_weight == ZERO


@pytest.mark.parametrize(
    ("kind", "target_id", "weight", "message"),
    [
        (TargetKind.SECURITY, "VTI", "1.01", r"weight must lie in \[0, 1\]"),
        (TargetKind.SECURITY, "VTI", "-0.01", r"weight must lie in \[0, 1\]"),
        (TargetKind.CASH, "USD", "0.05", "takes no id"),
        (TargetKind.SECURITY, "", "0.05", "needs an id"),
        (TargetKind.MODEL, "", "0.05", "needs an id"),
        (TargetKind.ASSET_CLASS, "us_equity", "0.30", "carries a band, not a weight"),
    ],
)
def test_model_target_when_it_breaks_a_rule_then_validation_error(
    kind: TargetKind, target_id: str, weight: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        ModelTarget(kind, target_id, D(weight))


def test_model_when_a_security_is_listed_twice_then_validation_error() -> None:
    with pytest.raises(ValidationError, match="'VTI' twice"):
        model("M", "security VTI 0.5\nsecurity VTI 0.5")


def test_model_when_it_holds_itself_then_validation_error() -> None:
    with pytest.raises(ValidationError, match="holds itself"):
        model("M", "model M 0.5\nsecurity VTI 0.5")


def test_model_when_id_is_blank_then_validation_error() -> None:
    with pytest.raises(ValidationError, match="needs an id"):
        model(" ", "security VTI 1")


# --- resolving models of models -------------------------------------------------------


def test_resolve_when_60_40_parent_holds_two_sleeves_then_weights_multiply_out_exactly() -> None:
    # VTI  0.60 × 0.70                = 0.42
    # VXUS 0.60 × 0.20                = 0.12
    # SGOV 0.60 × 0.05 + 0.40 × 0.15  = 0.09
    # BND  0.40 × 0.80                = 0.32
    # cash 0.60 × 0.05 + 0.40 × 0.05  = 0.05
    resolved = resolve("BAL-60-40", catalogue(BALANCED, EQUITY, FIXED_INCOME))

    assert resolved.model_id == "BAL-60-40"
    assert dict(resolved.securities) == {
        "VTI": D("0.42"),
        "VXUS": D("0.12"),
        "SGOV": D("0.09"),
        "BND": D("0.32"),
    }
    assert resolved.cash == D("0.05")
    assert sum(resolved.securities.values(), resolved.cash) == 1


def test_resolve_when_sleeves_nest_three_deep_then_scales_multiply_down_the_tree() -> None:
    # Growth holds 50% of BAL-60-40 and 50% VTI directly, so
    # VTI = 0.5 + 0.5 × 0.42 = 0.71; BND = 0.5 × 0.32 = 0.16; cash = 0.5 × 0.05 = 0.025.
    growth = model("GROWTH", "model BAL-60-40 0.5\nsecurity VTI 0.5")

    resolved = resolve("GROWTH", catalogue(growth, BALANCED, EQUITY, FIXED_INCOME))

    assert dict(resolved.securities) == {
        "VTI": D("0.71"),
        "VXUS": D("0.06"),
        "SGOV": D("0.045"),
        "BND": D("0.16"),
    }
    assert resolved.cash == D("0.025")


def test_resolve_when_a_model_holds_only_securities_then_weights_are_its_own() -> None:
    resolved = resolve("FI", catalogue(FIXED_INCOME))

    assert dict(resolved.securities) == {"BND": D("0.80"), "SGOV": D("0.15")}
    assert resolved.cash == D("0.05")


def test_resolve_when_two_sleeves_share_a_core_sleeve_then_it_is_not_taken_for_a_cycle() -> None:
    core = model("CORE", "security VTI 1")
    left = model("LEFT", "model CORE 0.5\nsecurity BND 0.5")
    right = model("RIGHT", "model CORE 0.5\ncash 0.5")
    parent = model("P", "model LEFT 0.5\nmodel RIGHT 0.5")

    resolved = resolve("P", catalogue(core, left, right, parent))

    assert dict(resolved.securities) == {"VTI": D("0.5"), "BND": D("0.25")}
    assert resolved.cash == D("0.25")


def test_resolve_when_two_models_hold_each_other_then_validation_error() -> None:
    a = model("A", "model B 0.5\nsecurity VTI 0.5")
    b = model("B", "model A 0.5\nsecurity BND 0.5")

    with pytest.raises(ValidationError, match="cycle: A → B → A"):
        resolve("A", catalogue(a, b))


def test_resolve_when_a_cycle_runs_through_three_models_then_validation_error() -> None:
    a = model("A", "model B 1")
    b = model("B", "model C 1")
    c = model("C", "model A 0.5\ncash 0.5")

    with pytest.raises(ValidationError, match="cycle: A → B → C → A"):
        resolve("A", catalogue(a, b, c))


def test_resolve_when_a_sleeve_is_unknown_then_validation_error() -> None:
    parent = model("P", "model MISSING 0.5\nsecurity VTI 0.5")

    with pytest.raises(ValidationError, match="model P holds unknown model MISSING"):
        resolve("P", catalogue(parent))


def test_resolve_when_the_model_itself_is_unknown_then_validation_error() -> None:
    with pytest.raises(ValidationError, match="unknown model NOPE"):
        resolve("NOPE", catalogue(EQUITY))


@st.composite
def weights(draw: st.DrawFn, count: int) -> list[Decimal]:
    """``count`` weights in basis points that add up to exactly 1."""
    cuts = sorted(draw(st.lists(st.integers(0, 10_000), min_size=count - 1, max_size=count - 1)))
    bounds = [0, *cuts, 10_000]
    return [Decimal(hi - lo).scaleb(-4) for lo, hi in pairwise(bounds)]


@st.composite
def model_trees(draw: st.DrawFn) -> dict[str, Model]:
    """A parent of up to four sleeves, each of up to four securities (shared names) and cash."""
    sleeves = []
    for number in range(draw(st.integers(1, 4))):
        names = draw(st.lists(st.sampled_from(["VTI", "VXUS", "BND", "SGOV", "GLD"]), unique=True))
        ws = draw(weights(len(names) + 1))
        lines = [f"security {n} {w}" for n, w in zip(names, ws[:-1], strict=True)]
        sleeves.append(model(f"S{number}", "\n".join([*lines, f"cash {ws[-1]}"])))
    ws = draw(weights(len(sleeves)))
    parent = model(
        "P", "\n".join(f"model {s.model_id} {w}" for s, w in zip(sleeves, ws, strict=True))
    )
    return catalogue(parent, *sleeves)


@settings(max_examples=200, deadline=None)
@given(model_trees())
def test_resolve_when_any_model_of_models_then_weights_and_cash_add_up_to_exactly_one(
    models: dict[str, Model],
) -> None:
    resolved = resolve("P", models)

    assert sum(resolved.securities.values(), resolved.cash) == 1
    assert all(w >= ZERO for w in resolved.securities.values())
    assert resolved.cash == sum(
        (t.weight * models[t.target_id].cash_weight for t in models["P"].targets), ZERO
    )


# --- bands ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("band", "target", "width"),
    [
        pytest.param(Band(absolute=D("0.05")), "0.30", "0.05", id="absolute-only-0.30"),
        pytest.param(Band(absolute=D("0.05")), "0.02", "0.05", id="absolute-only-0.02"),
        pytest.param(Band(relative=D("0.25")), "0.30", "0.075", id="relative-only-0.30"),
        pytest.param(Band(relative=D("0.25")), "0.10", "0.025", id="relative-only-0.10"),
        pytest.param(Band(D("0.05"), D("0.25")), "0.30", "0.05", id="5/25-wide-target"),
        pytest.param(Band(D("0.05"), D("0.25")), "0.10", "0.025", id="5/25-narrow-target"),
        pytest.param(Band(D("0.05"), D("0.25")), "0.20", "0.05", id="5/25-crossover"),
    ],
)
def test_band_width_when_target_given_then_narrower_of_absolute_and_relative_applies(
    band: Band, target: str, width: str
) -> None:
    assert band.width(D(target)) == D(width)


def test_band_width_when_neither_limit_is_set_then_there_is_no_band() -> None:
    assert Band().width(D("0.30")) is None


@pytest.mark.parametrize("field", ["absolute", "relative"])
def test_band_when_a_limit_is_negative_then_validation_error(field: str) -> None:
    with pytest.raises(ValidationError, match=f"band {field} cannot be negative"):
        Band(**{field: D("-0.01")})
