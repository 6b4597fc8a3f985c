"""Reference data: securities, the firm's models and prices — objects of no household.

Every signed-in user may read them, a client too: securities and prices are market
facts, and a model is the firm's published allocation, not a household's data (what a
household holds, and on which model, is read through the book, within scope). The
security master and the models are a firm's few thousand rows at most, read whole as
the commands read them and paged here; prices are paged in their query.
"""

from __future__ import annotations

from datetime import date

from fastapi import Request, Response
from pydantic import BaseModel

from poise.api.deps import EngineDep
from poise.api.http import LimitQuery, OffsetQuery, PageOut, tagged
from poise.api.routes.answers import NOT_FOUND, SIGNED_IN, Exact, Moment
from poise.api.scoping import ScopedDep, scoped_router
from poise.domain.errors import PoiseError
from poise.domain.models import Band, Model, resolve
from poise.domain.securities import Security
from poise.store import repo
from poise.store.repo import pages

__all__ = ["router"]

router = scoped_router(tags=["reference data"], responses=SIGNED_IN)


class SecurityOut(BaseModel):
    security_id: str
    symbol: str
    name: str
    kind: str
    asset_class: str
    sub_class: str
    currency: str
    trade_unit: str  # whole, fraction or round_lot
    trade_step: Exact  # the quantity grid it trades on
    tags: list[str]
    identity_group: str  # substantially identical, for the wash-sale rule
    replacements: list[str]  # what a loss harvest may buy instead, in order

    @classmethod
    def of(cls, s: Security) -> SecurityOut:
        return cls(
            security_id=s.security_id, symbol=s.symbol, name=s.name, kind=s.kind.value,
            asset_class=s.asset_class, sub_class=s.sub_class, currency=s.currency,
            trade_unit=s.trading.unit.value, trade_step=str(s.trading.step),
            tags=sorted(s.tags), identity_group=s.identity_group,
            replacements=list(s.replacements),
        )  # fmt: skip


class SecurityDetail(SecurityOut):
    price: Exact | None  # the latest
    price_as_of: Moment | None


class BandOut(BaseModel):
    absolute: Exact | None  # points of weight either side of the target
    relative: Exact | None  # a fraction of the target either side

    @classmethod
    def of(cls, band: Band) -> BandOut:
        return cls(
            absolute=None if band.absolute is None else str(band.absolute),
            relative=None if band.relative is None else str(band.relative),
        )


class TargetOut(BaseModel):
    kind: str  # security, model (a sleeve), cash, asset_class (a band) or default
    target_id: str
    weight: Exact
    band: BandOut


class ModelOut(BaseModel):
    model_id: str
    name: str
    targets: list[TargetOut]

    @classmethod
    def of(cls, m: Model) -> ModelOut:
        targets = [
            TargetOut(kind=t.kind.value, target_id=t.target_id, weight=str(t.weight),
                      band=BandOut.of(t.band))
            for t in m.targets
        ]  # fmt: skip
        return cls(model_id=m.model_id, name=m.name, targets=targets)


class WeightOut(BaseModel):
    security_id: str
    weight: Exact
    band: BandOut | None  # its own, where the model gives one


class ResolvedOut(BaseModel):
    securities: list[WeightOut]
    cash: Exact
    default_band: BandOut


class ModelDetail(ModelOut):
    resolved: ResolvedOut | None  # sleeves flattened into security weights, exactly
    unresolved: str | None  # why it does not resolve, if it does not


class PriceOut(BaseModel):
    security_id: str
    as_of: Moment
    price: Exact
    source: str


@router.get("/securities", response_model=PageOut[SecurityOut], summary="Securities")
def list_securities(
    request: Request, who: ScopedDep, engine: EngineDep,
    asset_class: str | None = None, kind: str | None = None,
    limit: LimitQuery = 100, offset: OffsetQuery = 0,
) -> Response:  # fmt: skip

    with engine.connect() as connection:
        found = list(repo.securities(connection).values())
    chosen = [
        s for s in found
        if (asset_class is None or s.asset_class == asset_class)
        and (kind is None or s.kind.value == kind)
    ]  # fmt: skip
    items = [SecurityOut.of(s) for s in chosen[offset : offset + limit]]
    return tagged(request, PageOut[SecurityOut](items=items, total=len(chosen), limit=limit,
                                                offset=offset))  # fmt: skip


@router.get(
    "/securities/{security_id}",
    response_model=SecurityDetail,
    summary="A security, and its latest price",
    responses=NOT_FOUND,
)
def get_security(request: Request, security_id: str, who: ScopedDep, engine: EngineDep) -> Response:

    with engine.connect() as connection:
        security = repo.securities(connection)[security_id]
        price = pages.latest_price(connection, security_id=security_id)
    body = SecurityDetail(
        **SecurityOut.of(security).model_dump(),
        price=None if price is None else str(price.price),
        price_as_of=None if price is None else price.as_of.isoformat(),
    )
    return tagged(request, body)


@router.get("/models", response_model=PageOut[ModelOut], summary="The firm's models")
def list_models(
    request: Request, who: ScopedDep, engine: EngineDep,
    limit: LimitQuery = 100, offset: OffsetQuery = 0,
) -> Response:  # fmt: skip

    with engine.connect() as connection:
        found = list(repo.models(connection).values())
    items = [ModelOut.of(m) for m in found[offset : offset + limit]]
    return tagged(request, PageOut[ModelOut](items=items, total=len(found), limit=limit,
                                             offset=offset))  # fmt: skip


@router.get(
    "/models/{model_id}",
    response_model=ModelDetail,
    summary="A model: its targets, and the security weights they resolve to",
    responses=NOT_FOUND,
)
def get_model(request: Request, model_id: str, who: ScopedDep, engine: EngineDep) -> Response:

    with engine.connect() as connection:
        models = repo.models(connection)
    resolved, unresolved = None, None
    try:
        flat = resolve(model_id, models)
    except PoiseError as e:  # a sleeve unknown, or models that hold each other
        unresolved = str(e)
    else:
        weights = [
            WeightOut(security_id=s, weight=str(w),
                      band=BandOut.of(flat.bands[s]) if s in flat.bands else None)
            for s, w in sorted(flat.securities.items())
        ]  # fmt: skip
        resolved = ResolvedOut(
            securities=weights, cash=str(flat.cash), default_band=BandOut.of(flat.default)
        )
    body = ModelDetail(
        **ModelOut.of(models[model_id]).model_dump(), resolved=resolved, unresolved=unresolved
    )
    return tagged(request, body)


@router.get("/prices", response_model=PageOut[PriceOut], summary="Prices")
def list_prices(
    request: Request, who: ScopedDep, engine: EngineDep,
    security_id: str | None = None, since: date | None = None, until: date | None = None,
    limit: LimitQuery = 100, offset: OffsetQuery = 0,
) -> Response:  # fmt: skip
    """Prices by security and time; ``since`` and ``until`` are days (UTC), both included."""
    with engine.connect() as connection:
        page = pages.prices_page(
            connection, security_id=security_id, since=since, until=until, limit=limit,
            offset=offset,
        )  # fmt: skip
    items = [
        PriceOut(security_id=p.security_id, as_of=p.as_of.isoformat(), price=str(p.price),
                 source=p.source)
        for p in page.items
    ]  # fmt: skip
    return tagged(request, PageOut[PriceOut](items=items, total=page.total, limit=limit,
                                             offset=offset))  # fmt: skip
