"""The firm page's evaluation of the whole book is kept while nothing is loaded, and
made again as soon as a file is: the page is never older than the store's last load."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from tests.api.reads_firm import AS_OF, build

from poise.domain.users import Scope
from poise.store import repo
from poise.web.views import firm_evaluation, firm_view


def loaded(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return repo.latest_load_id(connection)


def test_firm_evaluation_when_nothing_is_loaded_then_kept_and_when_a_file_is_then_new(
    tmp_path: Path,
) -> None:
    engine, _ = build(tmp_path)
    first = firm_evaluation(engine, at=AS_OF, loaded=loaded(engine))
    assert firm_evaluation(engine, at=AS_OF, loaded=loaded(engine)) is first
    assert firm_evaluation(engine, at=AS_OF, loaded=loaded(engine) + 1) is not first
    everyone, h2 = (
        firm_view(engine, Scope(firm=True)),
        firm_view(engine, Scope(households=frozenset({"H2"}))),
    )  # one evaluation, narrowed to each
    assert everyone.accounts == 3
    assert h2.accounts == 1
    engine.dispose()
