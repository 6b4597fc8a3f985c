"""Configuration, from ``POISE_*`` environment variables (or a ``.env`` file)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Where poise keeps its data and finds its inputs."""

    model_config = SettingsConfigDict(env_prefix="POISE_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///poise.db"
    data_dir: Path | None = None  # the demo's market data; None: the copy inside the package

    # Monitoring
    band_preset: str = "5/25"  # the firm's default band: "5/25" or "none"
    max_price_age_days: int = 4  # older prices hold the accounts they touch
    price_check: bool = True  # implausible prices hold the accounts they touch
    price_move_sigmas: float = 10.0  # the largest move, in recent daily volatilities
    price_move_floor: float = 0.10  # a move of at most this log return never holds
    price_jump_factor: float = 2.0  # with too little history: the largest move, either way
    price_ceiling: Decimal = Decimal(10_000_000)  # the highest plausible price
    harvest_min_loss: Decimal = Decimal(1000)  # dollars
    harvest_min_loss_fraction: Decimal = Decimal("0.10")  # of the lot's basis
    calendar: str | None = None  # "monthly", "quarterly", "semiannually", "annually"

    # Rebalancing
    risk_lookback_days: int = 730  # daily prices the risk model is estimated from
    min_trade: Decimal = Decimal(100)  # the smallest trade, in dollars
    min_trade_fraction: Decimal = Decimal("0.0005")  # ... as a fraction of the account
    long_term_wait_days: int = 31  # a short-term gain this close to long-term is charged
    location_weight: float = 0.01  # households: a year's cost of the most misplaced asset
    location_file: Path | None = None  # households: the firm's asset-location ranking (CSV)
    # Runs and the worker: small accounts' whole shares also searched by the
    # mixed-integer solver (rarely better, by a basis point or less; the slow part).
    # One account (`poise rebalance --account`) always is.
    exact_shares: bool = False

    # Firm-wide runs
    workers: int | None = None  # local worker processes; None: one per CPU; 1: no processes
    dask_scheduler: str | None = None  # a Dask scheduler's address: runs fan out to its cluster

    # Approvals (docs/approvals.md): a proposal trading more than this notional needs two
    # approvers; one expires this many hours after it was made, or once a price it
    # traded at has moved more than this fraction
    approval_two_above: Decimal = Decimal(1_000_000)
    approval_expire_hours: float = 72.0
    approval_expire_move: Decimal = Decimal("0.05")

    # Compliance (docs/rules.md): the folder of the firm's rule files (*.yaml, layered firm →
    # model → household → account); None: poise's own default firm rules
    rules_dir: Path | None = None

    # The audit ledger: the firm's Ed25519 signing key, a file never kept in the database
    # (None: audit-key.pem in $XDG_CONFIG_HOME/poise, else ~/.config/poise; docs/audit.md)
    audit_key: Path | None = None

    # Execution (docs/execution.md): what `poise execute` makes of released proposals
    cross_trades: bool = True  # cross opposite trades between consenting accounts first
    cross_excluded: str = "401k;roth_401k"  # registrations never crossed (ERISA plans), ;-separated
    order_type: str = "limit"  # block orders: "limit" (at the collar) or "market"
    order_collar: Decimal = Decimal("0.02")  # a limit this far past the reference price
    max_orders: int = 5_000  # a batch with more block orders is refused whole
    max_notional: Decimal = Decimal(100_000_000)  # ... or with more notional, in dollars
    price_collar: Decimal = Decimal("0.05")  # no limit price further than this from its reference
    routes_file: Path | None = None  # FIX routes (TOML); None: every custodian to the broker below
    broker_host: str = "127.0.0.1"  # the simulated broker (poise broker) of the default route
    broker_port: int = 9878
    ack_seconds: float = 30.0  # an order unacknowledged this long is chased with a status request

    # The books (docs/reconcile.md): fills into lots and cash, the custodian against them
    # a sale not relieved as it named its lots is relieved by: fifo, lifo, hifo or tax_min
    relief_method: str = "fifo"
    price_tolerance: Decimal = Decimal("0.01")  # a custodian's price further off is a break
    benchmark: str = "SPY"  # the security statements and reports measure households against

    # Events
    bus: str = "inprocess"  # or "nats"
    nats_url: str = "nats://127.0.0.1:4222"

    # The service (poise serve)
    cookie_secure: bool = True  # the session cookie only over HTTPS (and localhost)
    session_hours: int = 8  # a web session ends this long after signing in
    api_rate: int = 600  # API requests a minute per caller (user, else address); 0: no limit
    web_threads: int = 4  # threads each server process runs the routes on (poise serve --threads)
    upload_mb: int = 200  # the largest upload to ingest (API and pages), in megabytes

    # Signing in to the pages through the firm's identity provider (OpenID Connect):
    # off unless oidc_issuer is set (docs/service.md). The provider proves who someone
    # is; who they are in poise (their role, their households) is kept in poise.
    oidc_issuer: str | None = None  # the provider's issuer URL, or its discovery document's
    oidc_client_id: str | None = None  # poise as registered at the provider
    oidc_client_secret: SecretStr | None = None  # None: a public client (PKCE alone)
    oidc_scopes: str = "openid email profile"
    oidc_username_claim: str = "email"  # the claim that is the poise username
    oidc_label: str = "single sign-on"  # the button reads "Sign in with <label>"
    oidc_redirect_uri: str | None = None  # None: /sign-in/oidc/callback where the browser is
