"""The tables of the system of record.

Natural keys from the source systems are the primary keys, so a corrected row
replaces its predecessor. Money, prices and quantities are :class:`Exact`.

The small reference tables carry foreign keys. The bulk tables (lots, transactions,
prices, cash flows) do not: ingest checks every reference of every row, vectorised,
before it writes, and row-by-row foreign-key triggers would triple the time of a
million-row load. A reference that goes bad later (a security deleted by hand) is
what the monitor's data-integrity holds are for.
"""

from __future__ import annotations

import sqlalchemy as sa

from poise.store.types import Exact, UTCDateTime

__all__ = ["metadata"]

metadata = sa.MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


def _id(
    name: str,
    *args: sa.ForeignKey,
    primary_key: bool = False,
    nullable: bool | None = None,
    index: bool | None = None,
) -> sa.Column[str]:
    """An identifier from the source system."""
    return sa.Column(
        name,
        sa.String(64),
        *args,
        primary_key=primary_key,
        nullable=not primary_key if nullable is None else nullable,
        index=index,
    )


def _text(name: str) -> sa.Column[str]:
    return sa.Column(name, sa.Text, nullable=True)


securities = sa.Table(
    "securities",
    metadata,
    _id("security_id", primary_key=True),
    sa.Column("symbol", sa.String(32), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("asset_class", sa.String(64), nullable=False),
    _text("sub_class"),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("trade_unit", sa.String(16), nullable=False),
    sa.Column("trade_step", Exact, nullable=False),
    _text("tags"),
    _text("identity_group"),
    _text("replacements"),
)

households = sa.Table(
    "households",
    metadata,
    _id("household_id", primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    _text("advisor"),
    _id("model_id", nullable=True),  # one allocation across its accounts, where it has one
)

model_targets = sa.Table(
    "model_targets",
    metadata,
    _id("model_id", primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    _id("target_id", primary_key=True),
    _text("model_name"),
    sa.Column("weight", Exact, nullable=False),
    sa.Column("band_abs", Exact),
    sa.Column("band_rel", Exact),
)

accounts = sa.Table(
    "accounts",
    metadata,
    _id("account_id", primary_key=True),
    _id("household_id", sa.ForeignKey("households.household_id"), nullable=False, index=True),
    sa.Column("registration", sa.String(32), nullable=False),
    _text("custodian"),
    _text("name"),
    _id("model_id", nullable=True),
    sa.Column("cash", Exact, nullable=False),
    sa.Column("reserve_amount", Exact, nullable=False),
    sa.Column("reserve_pct", Exact, nullable=False),
    _text("do_not_buy"),
    _text("do_not_sell"),
    _text("excluded_tags"),
    sa.Column("st_rate", Exact, nullable=False),
    sa.Column("lt_rate", Exact, nullable=False),
    sa.Column("state_rate", Exact, nullable=False),
    sa.Column("harvest", sa.Boolean, nullable=False),
    sa.Column("band_abs", Exact),
    sa.Column("band_rel", Exact),
    sa.Column("min_trade", Exact),
    sa.Column("min_trade_pct", Exact),
    # consented to cross trades with the firm's other accounts (Advisers Act 206(3)-2)
    sa.Column("cross_consent", sa.Boolean, nullable=False, server_default=sa.false()),
    # how a sale the books cannot relieve as it named its lots is relieved (None: the
    # firm's POISE_RELIEF_METHOD)
    sa.Column("relief_method", sa.String(16)),
)

clients = sa.Table(
    "clients",
    metadata,
    _id("client_id", primary_key=True),
    _id("household_id", sa.ForeignKey("households.household_id"), nullable=False, index=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("risk_tolerance", sa.String(32), nullable=False),
    sa.Column("horizon_years", sa.Integer, nullable=False),
    _id("model_id", nullable=True),
    _text("goals"),
    _text("exclusions"),
    _text("esg"),
)

lots = sa.Table(
    "lots",
    metadata,
    _id("account_id", primary_key=True),
    _id("lot_id", primary_key=True),
    _id("security_id", nullable=False, index=True),
    sa.Column("quantity", Exact, nullable=False),
    sa.Column("cost_basis", Exact, nullable=False),
    sa.Column("acquired", sa.Date, nullable=False),
    sa.Column("adjusted_basis", Exact),
    sa.Column("holding_start", sa.Date),
    sa.Column("disallowed_loss", Exact, nullable=False),
)

transactions = sa.Table(
    "transactions",
    metadata,
    _id("account_id", primary_key=True),
    _id("txn_id", primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("trade_date", sa.Date, nullable=False),
    sa.Column("settle_date", sa.Date, nullable=False),
    _id("security_id", nullable=True),
    sa.Column("quantity", Exact, nullable=False),
    sa.Column("amount", Exact, nullable=False),
    _text("lots"),
    _text("description"),
)

prices = sa.Table(
    "prices",
    metadata,
    _id("security_id", primary_key=True),
    sa.Column("as_of", UTCDateTime, primary_key=True),
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("price", Exact, nullable=False),
)

cash_flows = sa.Table(
    "cash_flows",
    metadata,
    _id("account_id", primary_key=True),
    _id("flow_id", primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("amount", Exact, nullable=False),
    sa.Column("requested", sa.Date, nullable=False),
    sa.Column("due", sa.Date),
)

ingest_files = sa.Table(
    "ingest_files",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("rows_read", sa.Integer, nullable=False),
    sa.Column("inserted", sa.Integer, nullable=False),
    sa.Column("updated", sa.Integer, nullable=False),
    sa.Column("unchanged", sa.Integer, nullable=False),
    sa.Column("quarantined", sa.Integer, nullable=False),
    sa.Column("loaded_at", UTCDateTime, nullable=False),
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("line", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("file_name", sa.Text, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("raw", sa.Text, nullable=False),
    sa.Column("quarantined_at", UTCDateTime, nullable=False),
)

positions = sa.Table(
    "positions",
    metadata,
    _id("account_id", primary_key=True),
    sa.Column("as_of", sa.Date, primary_key=True),
    _id("security_id", primary_key=True),
    sa.Column("quantity", Exact, nullable=False),
    sa.Column("price", Exact),  # the custodian's price that day, where its file gives one
)

custodian_cash = sa.Table(  # the custodian's cash, a snapshot per account and day
    "custodian_cash",
    metadata,
    _id("account_id", primary_key=True),
    sa.Column("as_of", sa.Date, primary_key=True),
    sa.Column("cash", Exact, nullable=False),  # settled
    sa.Column("trade_date_cash", Exact),  # where the custodian gives it too
)

breaks = sa.Table(
    "breaks",
    metadata,
    _id("account_id", primary_key=True),
    _id("break_id", primary_key=True),
    sa.Column("opened", sa.Date, nullable=False),
    sa.Column("closed", sa.Date),
    _text("description"),
    # a break poise's own reconciliation found (None: one loaded from a breaks file)
    sa.Column("kind", sa.String(32)),  # quantity, cash, unknown_position, price
    _id("security_id", nullable=True),
    sa.Column("books", Exact),
    sa.Column("custodian", Exact),
    _text("cause"),  # its likely cause, where one can be told
    _id("resolved_by", nullable=True),  # a user's id, or "system" (cleared by a later snapshot)
    _text("reason"),  # why it was closed
)

rebalance_requests = sa.Table(
    "rebalance_requests",
    metadata,
    sa.Column("request_id", sa.String(200), primary_key=True),
    _id("account_id", nullable=True, index=True),
    _id("household_id", nullable=True),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("figures", sa.Text, nullable=False),  # JSON
    sa.Column("as_of", UTCDateTime, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open, answered, failed
    sa.Column("answered_by", sa.String(200), nullable=True, index=True),  # a proposal's id
    _text("failure"),  # why the worker could not answer it (status failed)
)

proposals = sa.Table(
    "proposals",
    metadata,
    sa.Column("proposal_id", sa.String(200), primary_key=True),
    _id("account_id", nullable=False, index=True),
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # an approval Status's value
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("as_of", UTCDateTime, nullable=False),  # prices as of
    sa.Column("cash_before", Exact, nullable=False),
    sa.Column("cash_after", Exact, nullable=False),
    sa.Column("realised_short", Exact, nullable=False),
    sa.Column("realised_long", Exact, nullable=False),
    sa.Column("estimated_tax", Exact, nullable=False),
    sa.Column("cost", Exact, nullable=False),
    sa.Column("drift_before", Exact, nullable=False),
    sa.Column("drift_after", Exact, nullable=False),
    sa.Column("binding", sa.Text, nullable=False),  # JSON list of sentences
    sa.Column("tracking_before", Exact),  # annual tracking error to the model, a fraction
    sa.Column("tracking_after", Exact),
    sa.Column("scenario", sa.String(32)),  # the named scenario it was kept from, if any
    _text("risk_model"),  # what the tracking errors rest on, in words
    sa.Column("superseded_by", sa.String(200)),  # the proposal that replaced it, if any
    sa.Column("household_proposal_id", sa.String(200), index=True),  # the one it is part of
    sa.Column("prepared_by", sa.String(64)),  # a user's id; None: the system (and before 0014)
    _text("status_reason"),  # why it was rejected, expired or superseded
)

household_proposals = sa.Table(
    "household_proposals",
    metadata,
    sa.Column("proposal_id", sa.String(200), primary_key=True),
    _id("household_id", nullable=False, index=True),
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # an approval Status's value
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("as_of", UTCDateTime, nullable=False),
    _id("model_id", nullable=True),  # the household's allocation, if it had one
    sa.Column("run_id", sa.String(200), index=True),  # the firm-wide run that made it, if any
    sa.Column("meetings", sa.Text, nullable=False),  # JSON: how each meeting was settled
    sa.Column("location", sa.Text, nullable=False),  # JSON: where the assets are held, and why
    sa.Column("held", sa.Text, nullable=False),  # JSON: account → why it was not rebalanced
    sa.Column("superseded_by", sa.String(200)),
    sa.Column("prepared_by", sa.String(64)),
    _text("status_reason"),
)

proposal_trades = sa.Table(
    "proposal_trades",
    metadata,
    sa.Column(
        "proposal_id", sa.String(200), sa.ForeignKey("proposals.proposal_id"), primary_key=True
    ),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    _id("security_id", nullable=False),
    sa.Column("side", sa.String(8), nullable=False),
    sa.Column("quantity", Exact, nullable=False),
    sa.Column("price", Exact, nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("lots", sa.Text, nullable=False),  # JSON: lot, quantity, basis, proceeds, term
)

# ── approvals ────────────────────────────────────────────────────────────────
# A proposal's findings and approvals, under its id: an account's proposal of its own,
# or a household's (approved as one; its accounts' proposals move with it, and are not
# approved apart). Account and household proposal ids are found as `poise proposals
# show` finds them: an account's first (poise.workflow.approvals).

proposal_findings = sa.Table(
    "proposal_findings",
    metadata,
    sa.Column("proposal_id", sa.String(200), primary_key=True),
    _id("finding_id", primary_key=True),  # F1, F2, … in the order the rules found them
    sa.Column("blocks", sa.Boolean, nullable=False),  # else a warning
    sa.Column("rule_id", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("explanation", sa.Text, nullable=False),
    _text("detail"),  # JSON: the finding whole (measured, limit, securities, accounts)
    sa.Column("cleared_by", sa.String(64)),  # a user's id: acknowledged, or overridden
    sa.Column("cleared_at", UTCDateTime),
    _text("reason"),  # why it was cleared
)

proposal_approvals = sa.Table(  # each approver once, numbered in the order they approved
    "proposal_approvals",
    metadata,
    sa.Column("proposal_id", sa.String(200), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("proposal_id", "user_id", name="uq_proposal_approvals_approver"),
)

rebalance_runs = sa.Table(
    "rebalance_runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),  # e.g. 20261206-101502-3f2a
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),  # None while it runs, or if it never finished
    sa.Column("as_of", UTCDateTime, nullable=False),  # prices as of
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("selection", sa.Text, nullable=False),  # JSON: which households were asked for
    sa.Column("options", sa.Text, nullable=False),  # JSON: the run's options
    sa.Column("status", sa.String(16), nullable=False),  # running, finished, interrupted
    sa.Column("summary", sa.Text),  # JSON: what the run came to, once it ends
    sa.Column("households", sa.Integer),  # how many it set out to do (None: runs before 0012)
)

run_households = sa.Table(
    "run_households",
    metadata,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("rebalance_runs.run_id"), primary_key=True),
    _id("household_id", primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # done, failed
    sa.Column("household_proposal_id", sa.String(200)),  # what a household done was given
    _text("reason"),  # why a household failed: the exception's type and message
    sa.Column("finished_at", UTCDateTime, nullable=False),
)

backtests = sa.Table(
    "backtests",
    metadata,
    sa.Column("backtest_id", sa.String(64), primary_key=True),  # a uuid4, in hex
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("prices_file", sa.Text, nullable=False),  # the name it was given
    sa.Column("prices_digest", sa.String(64), nullable=False),  # sha256 of the file's bytes
    _id("model_id", nullable=False),
    sa.Column("start", sa.Date, nullable=False),
    sa.Column("end", sa.Date, nullable=False),
    sa.Column("inputs", sa.Text, nullable=False),  # JSON: everything asked, to run it again
    sa.Column("digest", sa.String(64), nullable=False),  # sha256 of the results
)

backtest_methods = sa.Table(
    "backtest_methods",
    metadata,
    sa.Column(
        "backtest_id",
        sa.String(64),
        sa.ForeignKey("backtests.backtest_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("method", sa.String(32), primary_key=True),
    sa.Column("summary", sa.Text, nullable=False),  # JSON: the method's figures
    sa.Column("years", sa.Text, nullable=False),  # JSON: a row per calendar year
    sa.Column("series", sa.Text, nullable=False),  # JSON: days, pre-tax and after-tax wealth
)

# ── who signs in ─────────────────────────────────────────────────────────────
# A user's household, and an adviser's, refer to the households table as accounts do:
# ingest upserts households and never deletes one, so the reference holds.

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.String(32), primary_key=True),  # a uuid4, in hex
    sa.Column("username", sa.String(64), nullable=False, unique=True),  # lower-cased
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("role", sa.String(32), nullable=False),  # a Role's value
    _id("household_id", sa.ForeignKey("households.household_id"), nullable=True),  # a client's
    sa.Column("password_hash", sa.Text),  # Argon2id, PHC string; None: signs in only by OIDC
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("failed_logins", sa.Integer, nullable=False),  # wrong passwords in a row
    sa.Column("locked_until", UTCDateTime),  # refused until then, even the right password
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("password_changed_at", UTCDateTime),  # tokens issued before it no longer hold
)

user_households = sa.Table(  # the households assigned to an adviser
    "user_households",
    metadata,
    sa.Column(
        "user_id",
        sa.String(32),
        sa.ForeignKey("users.user_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    _id("household_id", sa.ForeignKey("households.household_id"), primary_key=True),
)

api_tokens = sa.Table(  # personal access tokens: poise_pat_<token_id>_<secret>
    "api_tokens",
    metadata,
    sa.Column("token_id", sa.String(32), primary_key=True),
    sa.Column(
        "user_id",
        sa.String(32),
        sa.ForeignKey("users.user_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False),  # sha256 of the secret, in hex
    sa.Column("scopes", sa.Text, nullable=False),  # space-separated: read, write
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime),  # None: never
    sa.Column("revoked_at", UTCDateTime),
    sa.Column("last_used_at", UTCDateTime),
)

service_secrets = sa.Table(  # made once per store, so that restarts keep sessions valid
    "service_secrets",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),  # e.g. jwt
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

idempotency_keys = sa.Table(  # a POST's Idempotency-Key, and the answer it was given
    "idempotency_keys",
    metadata,
    sa.Column(
        "user_id",
        sa.String(32),
        sa.ForeignKey("users.user_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),  # sha256: method, path, body
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.Column("status", sa.Integer),  # None while the request it came with is in progress
    sa.Column("headers", sa.Text),  # JSON: the answer's Location and Content-Type
    sa.Column("body", sa.LargeBinary),
)

# ── the audit ledger ─────────────────────────────────────────────────────────
# Appended to, never changed: triggers made by migration 0013 refuse an UPDATE or a
# DELETE of either table, on SQLite and PostgreSQL alike (poise.audit.ledger).

audit_entries = sa.Table(
    "audit_entries",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),  # leaf index
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("actor", sa.String(64), nullable=False),  # a user's id, or "system"
    sa.Column("action", sa.String(64), nullable=False, index=True),  # e.g. ingest.file
    sa.Column("subject", sa.String(200), nullable=False, index=True),  # an id: file, proposal…
    sa.Column("reason", sa.Text, nullable=False),  # why, in words; may be empty
    sa.Column("data_hash", sa.String(64), nullable=False),  # sha256 of the data's canonical JSON
    sa.Column("corrects", sa.BigInteger),  # the entry this one corrects, if any
    sa.Column("prev_hash", sa.String(64), nullable=False),  # the previous entry's leaf hash
    sa.Column("leaf_hash", sa.String(64), nullable=False),  # RFC 9162 leaf hash, hex
)

audit_checkpoints = sa.Table(  # signed tree heads
    "audit_checkpoints",
    metadata,
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),  # 1, 2, …
    sa.Column("tree_size", sa.BigInteger, nullable=False),
    sa.Column("root_hash", sa.String(64), nullable=False),  # hex
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("signature", sa.String(128), nullable=False),  # Ed25519, hex
    sa.Column("key_id", sa.String(64), nullable=False),  # sha256 of the raw public key, hex
)


# ── execution ────────────────────────────────────────────────────────────────
# A batch is what one `poise execute` decided from the proposals released before it:
# its crosses, its block orders with their written allocation statements, and the
# orders to send, each in the outbox — all in the one transaction that decided them.
# What comes back (execution reports, breaks) and what is allocated from it is kept
# as it arrives; a report's ExecID is booked once (poise.workflow.execute).

execution_batches = sa.Table(
    "execution_batches",
    metadata,
    sa.Column("batch_id", sa.String(64), primary_key=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),  # a user's id, or "system"
    sa.Column("policy", sa.Text, nullable=False),  # JSON: crossing, order type, collar, limits
)

batch_proposals = sa.Table(  # a released proposal is planned into one batch, once
    "batch_proposals",
    metadata,
    sa.Column("proposal_id", sa.String(200), primary_key=True),
    sa.Column("batch_id", sa.String(64), nullable=False, index=True),
)

crosses = sa.Table(
    "crosses",
    metadata,
    sa.Column("cross_id", sa.String(128), primary_key=True),
    sa.Column("batch_id", sa.String(64), nullable=False, index=True),
    _id("security_id", nullable=False),
    sa.Column("quantity", Exact, nullable=False),
    sa.Column("price", Exact, nullable=False),
    sa.Column("source", sa.Text, nullable=False),  # where the reference price came from
    sa.Column("price_at", UTCDateTime, nullable=False),  # and as of when
)

cross_legs = sa.Table(
    "cross_legs",
    metadata,
    sa.Column("cross_id", sa.String(128), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("proposal_id", sa.String(200), nullable=False, index=True),
    sa.Column("seq", sa.Integer, nullable=False),  # the proposal's trade
    _id("account_id", nullable=False),
    sa.Column("side", sa.String(8), nullable=False),
    sa.Column("quantity", Exact, nullable=False),
    sa.Column("lots", sa.Text, nullable=False),  # JSON: lot, quantity
    sa.Column("booked_at", UTCDateTime),  # when it went into the books (None: not yet)
)

block_orders = sa.Table(
    "block_orders",
    metadata,
    sa.Column("block_id", sa.String(128), primary_key=True),
    sa.Column("batch_id", sa.String(64), nullable=False, index=True),
    sa.Column("route", sa.String(64), nullable=False),
    _id("security_id", nullable=False),
    sa.Column("side", sa.String(8), nullable=False),
    sa.Column("quantity", Exact, nullable=False),
    sa.Column("ord_type", sa.String(8), nullable=False),
    sa.Column("limit_price", Exact),  # None: a market order
    sa.Column("reference", Exact, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open, filled, cancelled, rejected, halted
    sa.Column("filled", Exact, nullable=False),
    sa.Column("allocated_at", UTCDateTime),  # when its fills were allocated to the accounts
)

statement_lines = sa.Table(  # the written allocation statement, fixed before the order
    "statement_lines",
    metadata,
    sa.Column("block_id", sa.String(128), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("proposal_id", sa.String(200), nullable=False, index=True),
    sa.Column("seq", sa.Integer, nullable=False),
    _id("account_id", nullable=False),
    sa.Column("quantity", Exact, nullable=False),
    sa.Column("lots", sa.Text, nullable=False),  # JSON: lot, quantity
)

orders = sa.Table(  # what was asked of a broker: a new order, a cancel, a replace
    "orders",
    metadata,
    sa.Column("cl_ord_id", sa.String(64), primary_key=True),  # deterministic, never reused
    sa.Column("block_id", sa.String(128), nullable=False, index=True),
    sa.Column("route", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # new, cancel, replace, status
    sa.Column("orig_cl_ord_id", sa.String(64)),  # the order a cancel or replace is of
    sa.Column("quantity", Exact, nullable=False),
    sa.Column("limit_price", Exact),
    sa.Column("status", sa.String(16), nullable=False),  # an OrderState's value
    sa.Column("broker_order_id", sa.String(64)),
    sa.Column("filled", Exact, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime),
    sa.Column("acked_at", UTCDateTime),
    _text("text"),  # the broker's words on a reject
)

outbox = sa.Table(  # written with the order in the transaction that decided it
    "outbox",
    metadata,
    sa.Column("outbox_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("cl_ord_id", sa.String(64), nullable=False, unique=True),
    sa.Column("route", sa.String(64), nullable=False, index=True),
    sa.Column("sent_seq", sa.Integer),  # the FIX MsgSeqNum it went out under; None: unsent
    sa.Column("sent_at", UTCDateTime),
)

executions = sa.Table(  # every execution report, booked once by its ExecID
    "executions",
    metadata,
    sa.Column("route", sa.String(64), primary_key=True),
    sa.Column("exec_id", sa.String(64), primary_key=True),
    sa.Column("cl_ord_id", sa.String(64), nullable=False, index=True),
    sa.Column("exec_type", sa.String(4), nullable=False),
    sa.Column("ord_status", sa.String(4), nullable=False),
    sa.Column("last_qty", Exact, nullable=False),
    sa.Column("last_px", Exact, nullable=False),
    sa.Column("cum_qty", Exact, nullable=False),
    sa.Column("leaves_qty", Exact, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    _text("text"),
)

allocations = sa.Table(  # a block's fills, allocated to each account per its statement
    "allocations",
    metadata,
    sa.Column("block_id", sa.String(128), primary_key=True),
    sa.Column("proposal_id", sa.String(200), primary_key=True, index=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    _id("account_id", nullable=False, index=True),
    sa.Column("side", sa.String(8), nullable=False),
    sa.Column("quantity", Exact, nullable=False),
    sa.Column("price", Exact, nullable=False),  # the block's average price
    sa.Column("gross", Exact, nullable=False),
    sa.Column("commission", Exact, nullable=False),
    sa.Column("net", Exact, nullable=False),
    sa.Column("lots", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
)

booked_allocations = sa.Table(  # an allocation in the books, and since when: written once
    "booked_allocations",
    metadata,
    sa.Column("block_id", sa.String(128), primary_key=True),
    sa.Column("proposal_id", sa.String(200), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("booked_at", UTCDateTime, nullable=False),
)

execution_breaks = sa.Table(  # what came back and matched nothing: kept, never dropped
    "execution_breaks",
    metadata,
    sa.Column("break_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("route", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),  # unknown_order, overfill, …
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("raw", sa.Text, nullable=False),  # the message, | for SOH
    sa.Column("at", UTCDateTime, nullable=False),
)

fix_sessions = sa.Table(  # a FIX session's sequence numbers, continued across restarts
    "fix_sessions",
    metadata,
    sa.Column("session_key", sa.String(200), primary_key=True),
    sa.Column("next_sender", sa.Integer, nullable=False),
    sa.Column("next_target", sa.Integer, nullable=False),
)

fix_messages = sa.Table(  # what a session sent, for resend requests
    "fix_messages",
    metadata,
    sa.Column("session_key", sa.String(200), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("raw", sa.LargeBinary, nullable=False),
)


realised_gains = sa.Table(  # what each sale realised, lot by lot, as it was booked
    "realised_gains",
    metadata,
    _id("account_id", primary_key=True),
    _id("txn_id", primary_key=True),  # the sale
    _id("lot_id", primary_key=True),
    _id("security_id", nullable=False),
    sa.Column("quantity", Exact, nullable=False),
    sa.Column("proceeds", Exact, nullable=False),  # net of the sale's costs
    sa.Column("basis", Exact, nullable=False),  # adjusted by earlier wash sales, if any
    sa.Column("cost", Exact, nullable=False),  # before any adjustment
    sa.Column("acquired", sa.Date, nullable=False),
    sa.Column("held_since", sa.Date, nullable=False),  # the holding period's start
    sa.Column("sold", sa.Date, nullable=False),
    sa.Column("term", sa.String(8), nullable=False),  # short, long
)

closed_lots = sa.Table(  # lots a sale emptied, as they stood before it: their basis and
    "closed_lots",  # dates stay readable for the wash-sale engine and the tax reports
    metadata,
    _id("account_id", primary_key=True),
    _id("lot_id", primary_key=True),
    _id("security_id", nullable=False),
    sa.Column("quantity", Exact, nullable=False),
    sa.Column("cost_basis", Exact, nullable=False),
    sa.Column("acquired", sa.Date, nullable=False),
    sa.Column("adjusted_basis", Exact),
    sa.Column("holding_start", sa.Date),
    sa.Column("disallowed_loss", Exact, nullable=False),
    sa.Column("closed", sa.Date, nullable=False),
    _id("closed_by", nullable=False),  # the sale that emptied it
)
