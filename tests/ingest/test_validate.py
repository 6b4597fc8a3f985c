"""Validating a file's rows against its format: the canonical values a good row is stored
with, and the reason the operations team reads for every row that is turned away.

The firm already holds households HH-1, accounts ACC-1001 and ACC-1002, securities VTI,
BND and VXUS and the model M-CORE; the load runs on 30 December 2022.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl

from poise.ingest.formats import FORMATS
from poise.ingest.parse import LINE, Reject, read_table
from poise.ingest.validate import Batch, validate

TODAY = date(2022, 12, 30)
KNOWN = {
    "households": pl.Series(["HH-1"]),
    "accounts": pl.Series(["ACC-1001", "ACC-1002"]),
    "securities": pl.Series(["VTI", "BND", "VXUS"]),
    "models": pl.Series(["M-CORE"]),
}


def check(kind: str, text: str, *, known: dict[str, pl.Series] | None = None) -> Batch:
    """Validate ``text`` (a CSV file, indentation removed) as a file of ``kind``."""
    lines = [line.strip() for line in text.strip().splitlines()]
    table = read_table(("\n".join(lines) + "\n").encode(), name=f"{kind}.csv")
    return validate(table, FORMATS[kind], known=KNOWN if known is None else known, today=TODAY)


def reasons(batch: Batch) -> dict[int, str]:
    return {r.line: r.reason for r in batch.rejects}


def rows(batch: Batch, *columns: str) -> list[tuple[object, ...]]:
    return batch.rows.select(*columns).rows()


def as_utc(value: object) -> datetime:
    """A price's time as a datetime, whether the batch holds it typed or as text."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


LOTS = "account_id,lot_id,security_id,quantity,cost_basis,acquired"


def lots(*body: str) -> Batch:
    return check("lots", "\n".join((LOTS, *body)))


# --- numbers ------------------------------------------------------------------------


def test_validate_when_amounts_carry_plus_signs_and_trailing_zeros_then_they_are_canonical():
    batch = lots(
        "ACC-1001,L1,VTI,+7.50,1500.00,2022-01-03",
        "ACC-1001,L2,VTI,0.000,0,2022-01-03",
        "ACC-1001,L3,BND,100,1234.5670,2022-01-03",
        "ACC-1001,L4,BND,0.125,+0.0,2022-01-03",
    )

    assert batch.rejects == ()
    assert rows(batch, "lot_id", "quantity", "cost_basis", "disallowed_loss") == [
        ("L1", "7.5", "1500", "0"),
        ("L2", "0", "0", "0"),
        ("L3", "100", "1234.567", "0"),
        ("L4", "0.125", "0", "0"),
    ]


def test_validate_when_an_amount_ends_in_a_bare_point_then_it_is_stored_like_the_whole_number():
    batch = lots("ACC-1001,L1,VTI,100.,1500.,2022-01-03")

    assert rows(batch, "quantity", "cost_basis") == [("100", "1500")]


def test_validate_when_amounts_are_not_numbers_then_the_rows_are_rejected_quoting_the_text():
    batch = lots(
        "ACC-1001,L1,VTI,ten,1500,2022-01-03",
        "ACC-1001,L2,VTI,1e3,1500,2022-01-03",
        'ACC-1001,L3,VTI,100,"1,500.00",2022-01-03',
        "ACC-1001,L4,VTI,100,$1500,2022-01-03",
        "ACC-1001,L5,VTI,100,1500,2022-01-03",
    )

    assert reasons(batch) == {
        2: "quantity 'ten' is not a number",
        3: "quantity '1e3' is not a number",
        4: "cost_basis '1,500.00' is not a number",
        5: "cost_basis '$1500' is not a number",
    }
    assert rows(batch, "lot_id", LINE) == [("L5", 6)]


def test_validate_when_a_lot_has_a_negative_quantity_then_it_is_rejected():
    batch = lots("ACC-1001,L1,VTI,-5.00,1500,2022-01-03")

    assert batch.rejects == (
        Reject(2, "quantity -5 is negative", "ACC-1001,L1,VTI,-5.00,1500,2022-01-03"),
    )
    assert batch.rows.height == 0


PRICES = "security_id,as_of,price,source"


def test_validate_when_a_price_is_zero_or_negative_then_it_is_rejected():
    batch = check(
        "prices",
        f"""
        {PRICES}
        VTI,2022-12-28,0.00,custodian
        BND,2022-12-28,-72.10,custodian
        VXUS,2022-12-28,0.0001,custodian
        """,
    )

    assert reasons(batch) == {2: "price 0 must be positive", 3: "price -72.1 must be positive"}
    assert rows(batch, "security_id", "price") == [("VXUS", "0.0001")]


ACCOUNTS = "account_id,household_id,registration,st_rate,reserve_pct,cash"


def test_validate_when_a_rate_is_above_one_then_the_account_is_rejected():
    batch = check(
        "accounts",
        f"""
        {ACCOUNTS}
        ACC-2001,HH-1,taxable,0.37,1,
        ACC-2002,HH-1,taxable,37,0,
        ACC-2003,HH-1,taxable,0.37,1.05,
        ACC-2004,HH-1,taxable,-0.1,0,
        """,
    )

    assert reasons(batch) == {
        3: "st_rate 37 is not between 0 and 1",
        4: "reserve_pct 1.05 is not between 0 and 1",
        5: "st_rate -0.1 is not between 0 and 1",
    }
    assert rows(batch, "account_id", "st_rate", "reserve_pct") == [("ACC-2001", "0.37", "1")]


def test_validate_when_a_rate_is_above_one_by_a_hair_then_the_account_is_rejected():
    batch = check(
        "accounts",
        f"""
        {ACCOUNTS}
        ACC-2001,HH-1,taxable,0,1.0000000000000001,
        """,
    )

    assert reasons(batch) == {2: "reserve_pct 1.0000000000000001 is not between 0 and 1"}


# --- dates and times ----------------------------------------------------------------


def test_validate_when_acquired_dates_are_malformed_or_impossible_then_lots_are_rejected():
    batch = lots(
        "ACC-1001,L1,VTI,100,1500,2022/01/03",
        "ACC-1001,L2,VTI,100,1500,2022-1-3",
        "ACC-1001,L3,VTI,100,1500,03/01/2022",
        "ACC-1001,L4,VTI,100,1500,2022-02-30",
        "ACC-1001,L5,VTI,100,1500,2022-13-01",
        "ACC-1001,L6,VTI,100,1500,1899-12-31",
        "ACC-1001,L7,VTI,100,1500,2020-02-29",
    )

    assert reasons(batch) == {
        2: "acquired '2022/01/03' is not a date (YYYY-MM-DD)",
        3: "acquired '2022-1-3' is not a date (YYYY-MM-DD)",
        4: "acquired '03/01/2022' is not a date (YYYY-MM-DD)",
        5: "acquired '2022-02-30' is not a date (YYYY-MM-DD)",
        6: "acquired '2022-13-01' is not a date (YYYY-MM-DD)",
        7: "acquired 1899-12-31 is before 1900",
    }
    assert rows(batch, "lot_id", "acquired") == [("L7", date(2020, 2, 29))]


def test_validate_when_a_lot_is_acquired_after_the_load_day_then_it_is_rejected():
    batch = lots(
        "ACC-1001,L1,VTI,100,1500,2022-12-30",
        "ACC-1001,L2,VTI,100,1500,2022-12-31",
    )

    assert reasons(batch) == {3: "acquired 2022-12-31 is in the future"}
    assert rows(batch, "lot_id", "acquired") == [("L1", TODAY)]


def test_validate_when_a_cash_flow_is_due_next_year_then_it_is_accepted():
    batch = check(
        "cash_flows",
        """
        account_id,flow_id,kind,amount,requested,due
        ACC-1001,F1,Withdrawal,5000.00,2022-12-15,2023-01-15
        ACC-1001,F2,deposit,100,2022-12-31,
        ACC-1001,F3,deposit,100,2022-12-15,2022-12-01
        """,
    )

    assert reasons(batch) == {
        3: "requested 2022-12-31 is in the future",
        4: "due is before requested",
    }
    assert rows(batch, "flow_id", "kind", "amount", "due") == [
        ("F1", "withdrawal", "5000", date(2023, 1, 15))
    ]


def test_validate_when_prices_are_stamped_in_each_accepted_form_then_times_are_utc():
    batch = check(
        "prices",
        f"""
        {PRICES}
        VTI,2022-12-28,231.50,close
        VTI,2022-12-28T21:00:00Z,231.50,last
        VTI,2022-12-28T21:00:00+02:00,231.50,europe
        VTI,2022-12-28T16:00:00.250-05:00,231.50,ny
        """,
    )

    assert batch.rejects == ()
    assert [(source, as_utc(t)) for source, t in rows(batch, "source", "as_of")] == [
        ("close", datetime(2022, 12, 28, 0, 0, tzinfo=UTC)),
        ("last", datetime(2022, 12, 28, 21, 0, tzinfo=UTC)),
        ("europe", datetime(2022, 12, 28, 19, 0, tzinfo=UTC)),
        ("ny", datetime(2022, 12, 28, 21, 0, 0, 250_000, tzinfo=UTC)),
    ]


def test_validate_when_prices_are_valid_then_as_of_is_a_utc_datetime_column():
    batch = check(
        "prices",
        f"""
        {PRICES}
        VTI,2022-12-28T21:00:00+02:00,231.50,europe
        """,
    )

    assert batch.rows.schema["as_of"] == pl.Datetime("us", "UTC")
    assert batch.rows["as_of"].to_list() == [datetime(2022, 12, 28, 19, 0, tzinfo=UTC)]


def test_validate_when_a_price_time_has_no_offset_then_it_is_rejected():
    batch = check(
        "prices",
        f"""
        {PRICES}
        VTI,2022-12-28T21:00:00,231.50,last
        VTI,2022-12-28 21:00:00Z,231.50,last
        """,
    )

    assert reasons(batch) == {
        2: "as_of '2022-12-28T21:00:00' is not a time"
        " (YYYY-MM-DDTHH:MM:SS±HH:MM, or a date for midnight UTC)",
        3: "as_of '2022-12-28 21:00:00Z' is not a time"
        " (YYYY-MM-DDTHH:MM:SS±HH:MM, or a date for midnight UTC)",
    }


def test_validate_when_a_price_is_stamped_after_the_load_day_then_it_is_rejected():
    batch = check(
        "prices",
        f"""
        {PRICES}
        VTI,2022-12-30T21:00:00Z,231.50,last
        VTI,2022-12-31,231.50,close
        BND,2022-12-31T00:00:00Z,72.10,last
        """,
    )

    assert reasons(batch) == {
        3: "as_of 2022-12-31 is in the future",
        4: "as_of 2022-12-31T00:00:00Z is in the future",
    }


# --- booleans, choices, lists, references -------------------------------------------


def test_validate_when_harvest_is_spelt_in_each_accepted_way_then_it_is_a_boolean():
    batch = check(
        "accounts",
        """
        account_id,household_id,registration,harvest
        ACC-2001,HH-1,taxable,yes
        ACC-2002,HH-1,taxable,no
        ACC-2003,HH-1,taxable,1
        ACC-2004,HH-1,taxable,0
        ACC-2005,HH-1,taxable,TRUE
        ACC-2006,HH-1,taxable,False
        ACC-2007,HH-1,taxable,Y
        ACC-2008,HH-1,taxable,maybe
        """,
    )

    assert reasons(batch) == {9: "harvest 'maybe' is not a true/false"}
    assert batch.rows.schema["harvest"] == pl.Boolean
    assert rows(batch, "account_id", "harvest") == [
        ("ACC-2001", True),
        ("ACC-2002", False),
        ("ACC-2003", True),
        ("ACC-2004", False),
        ("ACC-2005", True),
        ("ACC-2006", False),
        ("ACC-2007", True),
    ]


def test_validate_when_choices_are_in_any_case_then_they_are_lower_cased():
    batch = check(
        "accounts",
        """
        account_id,household_id,registration
        ACC-2001,HH-1,Taxable
        ACC-2002,HH-1,ROTH_IRA
        ACC-2003,HH-1,401K
        ACC-2004,HH-1,brokerage
        """,
    )

    assert reasons(batch) == {
        5: "registration 'brokerage' is not one of taxable, joint, trust, traditional_ira,"
        " roth_ira, sep_ira, 401k, roth_401k, hsa"
    }
    assert rows(batch, "account_id", "registration") == [
        ("ACC-2001", "taxable"),
        ("ACC-2002", "roth_ira"),
        ("ACC-2003", "401k"),
    ]


def test_validate_when_list_items_are_padded_or_empty_then_they_are_trimmed_and_dropped():
    batch = check(
        "accounts",
        """
        account_id,household_id,registration,do_not_buy,excluded_tags
        ACC-2001,HH-1,taxable, VTI ; ;BND; ,tobacco ; fossil_fuels
        ACC-2002,HH-1,taxable,,
        """,
    )

    assert batch.rejects == ()
    assert rows(batch, "account_id", "do_not_buy", "excluded_tags") == [
        ("ACC-2001", "VTI;BND", "tobacco;fossil_fuels"),
        ("ACC-2002", None, None),
    ]


def test_validate_when_a_list_names_an_unknown_security_then_that_item_is_named():
    batch = check(
        "accounts",
        """
        account_id,household_id,registration,do_not_sell
        ACC-2001,HH-1,taxable,VTI;ZZZ;QQQ
        """,
    )

    assert reasons(batch) == {2: "do_not_sell: unknown security 'ZZZ'"}


def test_validate_when_a_replacement_security_is_unknown_then_the_security_is_rejected():
    batch = check(
        "securities",
        """
        security_id,symbol,name,kind,asset_class,replacements
        ITOT,ITOT,iShares Core S&P Total,etf,us_equity,VTI; SCHB
        SCHB,SCHB,Schwab US Broad Market,etf,us_equity,ITOT
        IVV,IVV,iShares Core S&P 500,etf,us_equity,VOO;SCHB
        """,
    )

    assert reasons(batch) == {4: "replacements: unknown security 'VOO'"}
    assert rows(batch, "security_id", "replacements") == [
        ("ITOT", "VTI;SCHB"),
        ("SCHB", "ITOT"),
    ]


def test_validate_when_a_lot_names_an_unknown_account_or_security_then_it_is_rejected():
    batch = lots(
        "ACC-9999,L1,VTI,100,1500,2022-01-03",
        "ACC-1001,L2,ZZZ,100,1500,2022-01-03",
    )

    assert reasons(batch) == {
        2: "account_id: unknown account 'ACC-9999'",
        3: "security_id: unknown security 'ZZZ'",
    }


# --- defaults and required columns --------------------------------------------------


def test_validate_when_optional_account_columns_are_left_out_then_defaults_are_filled():
    batch = check(
        "accounts",
        """
        account_id,household_id,registration
        ACC-2001,HH-1,joint
        """,
    )

    assert batch.rejects == ()
    assert rows(
        batch, "cash", "reserve_amount", "reserve_pct", "st_rate", "harvest", "model_id"
    ) == [("0", "0", "0", "0", False, None)]


def test_validate_when_optional_security_columns_are_empty_then_defaults_are_filled():
    batch = check(
        "securities",
        """
        security_id,symbol,name,kind,asset_class,currency,trade_unit,trade_step
        ITOT,ITOT,iShares Core S&P Total,ETF,us_equity,,,
        """,
    )

    assert rows(batch, "kind", "currency", "trade_unit", "trade_step") == [
        ("etf", "USD", "whole", "1")
    ]


def test_validate_when_required_cells_are_empty_then_each_row_says_which_is_missing():
    batch = check(
        "clients",
        """
        client_id,household_id,name,risk_tolerance,horizon_years
        C-1,HH-1,Ann Lee,moderate,30
        C-2,HH-1,,moderate,30
        C-3,HH-1,Bo Chan,,30
        C-4,HH-1,Cy Diaz,aggressive,
        """,
    )

    assert reasons(batch) == {
        3: "name is missing",
        4: "risk_tolerance is missing",
        5: "horizon_years is missing",
    }


def test_validate_when_a_required_column_is_absent_from_the_file_then_every_row_is_rejected():
    batch = check(
        "lots",
        """
        account_id,lot_id,security_id,quantity,cost_basis
        ACC-1001,L1,VTI,100,1500
        ACC-1001,L2,BND,50,3600
        """,
    )

    assert reasons(batch) == {2: "acquired is missing", 3: "acquired is missing"}
    assert batch.rows.height == 0


# --- duplicates ---------------------------------------------------------------------


def test_validate_when_a_lot_appears_twice_in_a_file_then_the_first_stands():
    batch = lots(
        "ACC-1001,L1,VTI,100,1500,2022-01-03",
        "ACC-1002,L1,VTI,100,1500,2022-01-03",
        "ACC-1001,L2,BND,50,3600,2022-01-03",
        "ACC-1001,L1,VTI,120,1800,2022-02-01",
        "ACC-1001,L1,VTI,140,2100,2022-03-01",
    )

    assert reasons(batch) == {
        5: "the same account_id/lot_id as line 2",
        6: "the same account_id/lot_id as line 2",
    }
    assert rows(batch, "account_id", "lot_id", "quantity") == [
        ("ACC-1001", "L1", "100"),
        ("ACC-1002", "L1", "100"),
        ("ACC-1001", "L2", "50"),
    ]


def test_validate_when_a_price_is_sent_twice_for_the_same_time_and_source_then_one_stands():
    batch = check(
        "prices",
        f"""
        {PRICES}
        VTI,2022-12-28,231.50,
        VTI,2022-12-28,231.50,vendor
        VTI,2022-12-28,231.75,
        """,
    )

    assert reasons(batch) == {4: "the same security_id/as_of/source as line 2"}
    assert rows(batch, "source", "price") == [("", "231.5"), ("vendor", "231.5")]


# --- models -------------------------------------------------------------------------

MODELS = "model_id,model_name,kind,target_id,weight,band_abs"


def models(*body: str) -> Batch:
    return check("models", "\n".join((MODELS, *body)))


def test_validate_when_a_model_weights_add_up_to_exactly_one_then_every_row_is_kept():
    batch = models(
        "M-GROWTH,Growth 60/35/5,security,VTI,0.60,",
        "M-GROWTH,,security,BND,0.35,",
        "M-GROWTH,,cash,,0.05,",
        "M-GROWTH,,asset_class,us_equity,,0.05",
    )

    assert batch.rejects == ()
    assert rows(batch, "kind", "target_id", "weight", "band_abs") == [
        ("security", "VTI", "0.6", None),
        ("security", "BND", "0.35", None),
        ("cash", "", "0.05", None),
        ("asset_class", "us_equity", "0", "0.05"),
    ]


def test_validate_when_thirds_are_written_to_six_places_then_exact_sum_is_checked():
    batch = models(
        "M-THIRDS,Thirds,security,VTI,0.333333,",
        "M-THIRDS,,security,BND,0.333333,",
        "M-THIRDS,,security,VXUS,0.333334,",
    )

    assert batch.rejects == ()


def test_validate_when_a_model_weights_add_up_to_point_nine_then_the_whole_model_is_rejected():
    batch = models(
        "M-CORE,Core,security,VTI,1,",
        "M-BAD,Short,security,VTI,0.5,",
        "M-BAD,,security,BND,0.4,",
    )

    assert reasons(batch) == {
        3: "weights of model_id M-BAD add up to 0.9, not 1",
        4: "weights of model_id M-BAD add up to 0.9, not 1",
    }
    assert rows(batch, "model_id", "target_id") == [("M-CORE", "VTI")]


def test_validate_when_a_model_holds_a_sleeve_defined_later_in_the_file_then_it_is_kept():
    batch = models(
        "M-GROWTH,Growth,security,VTI,0.6,",
        "M-GROWTH,,model,M-BONDS,0.4,",
        "M-BONDS,Bonds,security,BND,1,",
    )

    assert batch.rejects == ()
    assert rows(batch, "model_id", "kind", "target_id") == [
        ("M-GROWTH", "security", "VTI"),
        ("M-GROWTH", "model", "M-BONDS"),
        ("M-BONDS", "security", "BND"),
    ]


def test_validate_when_a_model_holds_itself_then_it_is_rejected():
    batch = models("M-LOOP,Loop,model,M-LOOP,1,")

    assert reasons(batch) == {2: "a model cannot hold itself"}


def test_validate_when_one_row_of_a_model_is_bad_then_its_other_rows_fall_with_it():
    batch = models(
        "M-AC,Bands,security,VTI,1,",
        "M-AC,,asset_class,us_equity,0.1,",
    )

    assert reasons(batch) == {
        2: "model_id M-AC has an invalid row (line 3)",
        3: "an asset_class row carries bands, not a weight",
    }


def test_validate_when_the_cash_row_names_a_target_then_it_is_rejected():
    batch = models(
        "M-CASH,All cash,cash,USD,1,",
        "M-CASH2,All cash,cash,,1,",
    )

    assert reasons(batch) == {2: "the cash row takes no target_id"}
    assert rows(batch, "model_id", "kind", "target_id") == [("M-CASH2", "cash", "")]


def test_validate_when_model_rows_lack_targets_or_name_unknown_ones_then_they_are_rejected():
    batch = models(
        "M-A,A,Security,,1,",
        "M-B,B,security,ZZZ,1,",
        "M-C,C,model,M-NOWHERE,1,",
    )

    assert reasons(batch) == {
        2: "a security row needs a target_id",
        3: "target_id: unknown security 'ZZZ'",
        4: "target_id: unknown model 'M-NOWHERE'",
    }


def test_validate_when_a_model_has_two_cash_rows_then_the_second_is_a_duplicate():
    batch = models(
        "M-CASH,All cash,cash,,0.5,",
        "M-CASH,,cash,,0.5,",
    )

    assert reasons(batch) == {
        2: "model_id M-CASH has an invalid row (line 3)",
        3: "the same model_id/kind/target_id as line 2",
    }


# --- transactions -------------------------------------------------------------------

TRANSACTIONS = "account_id,txn_id,kind,trade_date,settle_date,security_id,quantity,amount,lots"


def transactions(*body: str) -> Batch:
    return check("transactions", "\n".join((TRANSACTIONS, *body)))


def test_validate_when_a_trade_settles_before_it_is_traded_then_it_is_rejected():
    batch = transactions(
        "ACC-1001,T1,BUY,2022-12-27,2022-12-29,VTI,10,2315.00,",
        "ACC-1001,T2,buy,2022-12-27,2022-12-23,VTI,10,2315.00,",
    )

    assert reasons(batch) == {3: "settle_date is before trade_date"}
    assert rows(batch, "txn_id", "kind", "trade_date", "settle_date", "amount") == [
        ("T1", "buy", date(2022, 12, 27), date(2022, 12, 29), "2315")
    ]


def test_validate_when_a_buy_names_no_security_then_it_is_rejected():
    batch = transactions(
        "ACC-1001,T1,buy,2022-12-27,2022-12-29,,10,2315,",
        "ACC-1001,T2,deposit,2022-12-27,2022-12-27,,,5000,",
    )

    assert reasons(batch) == {2: "a buy names a security_id"}
    assert rows(batch, "txn_id", "security_id", "quantity", "amount") == [("T2", None, "0", "5000")]


def test_validate_when_a_buy_has_no_quantity_then_it_is_rejected():
    batch = transactions("ACC-1001,T1,buy,2022-12-27,2022-12-29,VTI,,2315,")

    assert reasons(batch) == {2: "a buy needs a quantity"}


def test_validate_when_a_buy_names_lots_then_it_is_rejected_because_only_sells_relieve():
    batch = transactions(
        "ACC-1001,T1,buy,2022-12-27,2022-12-29,VTI,100,23150,L1:100",
        "ACC-1001,T2,sell,2022-12-27,2022-12-29,VTI,100,23150,L1:60; L2:40;",
    )

    assert reasons(batch) == {2: "only a sell relieves lots"}
    assert rows(batch, "txn_id", "lots") == [("T2", "L1:60;L2:40")]


def test_validate_when_a_sale_relieves_lots_adding_up_to_another_quantity_then_it_is_rejected():
    batch = transactions(
        "ACC-1001,T1,sell,2022-12-27,2022-12-29,VTI,100,23150,L1:60;L2:30",
        "ACC-1001,T2,sell,2022-12-27,2022-12-29,VTI,0.5,115.75,L3:.25;L4:0.250",
        "ACC-1001,T3,sell,2022-12-27,2022-12-29,VTI,100.00,23150,L5:100.000",
    )

    assert reasons(batch) == {2: "lots relieve 90 shares but the sale is of 100"}
    assert rows(batch, "txn_id", "quantity") == [("T2", "0.5"), ("T3", "100")]


def test_validate_when_lots_are_not_written_as_lot_and_quantity_then_the_sale_is_rejected():
    batch = transactions("ACC-1001,T1,sell,2022-12-27,2022-12-29,VTI,100,23150,L1=100")

    assert reasons(batch) == {2: "lots 'L1=100' is not a list of LOT:QUANTITY"}


# --- securities, accounts, clients --------------------------------------------------

SECURITIES = "security_id,symbol,name,kind,asset_class,currency,trade_unit,trade_step,replacements"


def securities(*body: str) -> Batch:
    return check("securities", "\n".join((SECURITIES, *body)), known={})


def test_validate_when_a_whole_share_security_has_a_fractional_step_then_it_is_rejected():
    batch = securities(
        "AAPL,AAPL,Apple Inc,stock,us_equity,,whole,0.001,",
        "MSFT,MSFT,Microsoft,stock,us_equity,,whole,1.00,",
        "VTSAX,VTSAX,Vanguard Admiral,mutual_fund,us_equity,,fraction,0.001,",
        "UST10,UST10,Treasury 10y,bond,fixed_income,,round_lot,1000,",
        "UST30,UST30,Treasury 30y,bond,fixed_income,,round_lot,100.5,",
    )

    assert reasons(batch) == {
        2: "trade_step of a whole-share security must be 1",
        6: "a round lot is a whole number of shares",
    }
    assert rows(batch, "security_id", "trade_unit", "trade_step") == [
        ("MSFT", "whole", "1"),
        ("VTSAX", "fraction", "0.001"),
        ("UST10", "round_lot", "1000"),
    ]


def test_validate_when_a_currency_is_not_an_iso_code_then_the_security_is_rejected():
    batch = securities(
        "SAP,SAP,SAP SE,stock,intl_equity,EUR,,,",
        "NESN,NESN,Nestle,stock,intl_equity,chf,,,",
        "BP,BP,BP plc,stock,intl_equity,GBPX,,,",
    )

    assert reasons(batch) == {
        3: "currency 'chf' is not an ISO 4217 code",
        4: "currency 'GBPX' is not an ISO 4217 code",
    }


def test_validate_when_a_security_lists_itself_as_a_replacement_then_it_is_rejected():
    batch = securities(
        "ITOT,ITOT,iShares Core S&P Total,etf,us_equity,,,,ITOT;SCHB",
        "SCHB,SCHB,Schwab US Broad Market,etf,us_equity,,,,",
    )

    assert reasons(batch) == {2: "a security cannot replace itself"}


def test_validate_when_a_replacement_is_rejected_in_the_same_file_then_so_is_its_referrer():
    batch = securities(
        "ITOT,ITOT,iShares Core S&P Total,etf,us_equity,,,,SCHB",
        "SCHB,SCHB,Schwab US Broad Market,etf,us_equity,usd,,,",
    )

    assert reasons(batch) == {
        2: "replacements: unknown security 'SCHB'",
        3: "currency 'usd' is not an ISO 4217 code",
    }


def test_validate_when_harvesting_is_on_for_a_roth_ira_then_the_account_is_rejected():
    batch = check(
        "accounts",
        """
        account_id,household_id,registration,harvest
        ACC-2001,HH-1,taxable,true
        ACC-2002,HH-1,Roth_IRA,true
        ACC-2003,HH-1,roth_ira,false
        ACC-2004,HH-1,joint,yes
        """,
    )

    assert reasons(batch) == {3: "loss harvesting needs a taxable account, not roth_ira"}
    assert rows(batch, "account_id", "harvest") == [
        ("ACC-2001", True),
        ("ACC-2003", False),
        ("ACC-2004", True),
    ]


def test_validate_when_a_client_horizon_is_beyond_a_hundred_years_then_it_is_rejected():
    batch = check(
        "clients",
        """
        client_id,household_id,name,risk_tolerance,horizon_years,model_id
        C-1,HH-1,Ann Lee,Moderate,100,M-CORE
        C-2,HH-1,Bo Chan,moderate,101,
        C-3,HH-1,Cy Diaz,moderate,+7,
        C-4,HH-1,Di Eze,moderate,5.5,
        C-5,HH-2,Ed Fox,moderate,10,
        """,
    )

    assert reasons(batch) == {
        3: "horizon_years 101 is more than 100",
        5: "horizon_years '5.5' is not a whole number",
        6: "household_id: unknown household 'HH-2'",
    }
    assert batch.rows.schema["horizon_years"] == pl.Int64
    assert rows(batch, "client_id", "risk_tolerance", "horizon_years") == [
        ("C-1", "moderate", 100),
        ("C-3", "moderate", 7),
    ]


# --- the batch as a whole -----------------------------------------------------------


def test_validate_when_the_parser_rejected_a_ragged_row_then_the_batch_reports_it_in_line_order():
    table = read_table(
        (
            f"{LOTS}\n"
            "ACC-1001,L1,VTI,100,1500,2022-01-03\n"
            "ACC-1001,L2,VTI\n"
            "ACC-1001,L3,VTI,-1,1500,2022-01-03\n"
        ).encode(),
        name="lots.csv",
    )

    batch = validate(table, FORMATS["lots"], known=KNOWN, today=TODAY)

    assert batch.rejects == (
        Reject(3, "the row has 3 fields, the header has 6", "ACC-1001,L2,VTI"),
        Reject(4, "quantity -1 is negative", "ACC-1001,L3,VTI,-1,1500,2022-01-03"),
    )
    assert batch.read == 3
    assert batch.rows.columns == [*FORMATS["lots"].names, LINE]


def test_validate_when_two_models_hold_each_other_then_both_are_rejected_naming_the_cycle():
    batch = models(
        "M-A,Balanced,model,M-B,1,",
        "M-B,Income,model,M-A,1,",
        "M-C,Equity,security,VTI,1,",
    )

    assert reasons(batch) == {
        2: "models hold each other: M-A → M-B → M-A",
        3: "models hold each other: M-A → M-B → M-A",
    }
    assert rows(batch, "model_id") == [("M-C",)]
