"""Object-level authorisation, in one place.

Every data router is made by :func:`scoped_router`: each of its routes depends on
:func:`guard`, which finds who is asking (:mod:`poise.api.auth`) and, for every path
parameter that names an object, the household that object belongs to — and answers
404, exactly as for an object that does not exist, when that household is outside
the caller's :class:`~poise.domain.users.Scope`. A path parameter with no rule here
is a server error, never a silent pass: a new route cannot skip the check. Lists are
scoped by their queries, which take the caller's scope.

Some objects belong to no household yet are not everyone's: a firm-wide run is for the
firm-wide roles only, a backtest for the firm's people (not its clients), a file loaded
(whose quarantined rows may name any household's accounts), an entry of the audit
ledger (which names any household's proposals) and a broker order (whose block names
every account it trades for) for the firm-wide roles.
Their rule names the roles that may see them: anyone else is answered 404 for one (as
for one that does not exist), and 403 for the list: a router's role rule,
:data:`firm_only` or :data:`staff_only`.

What a role may *do* is a rule of the same shape on the route that does it: loading
files is for operations and admins alone (:data:`operations_only`, 403 to the others).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request

from poise.api.auth import Principal, identify
from poise.api.deps import EngineDep
from poise.domain.errors import ForbiddenError, NotFoundError
from poise.domain.users import FIRM_WIDE, LOADERS, Role
from poise.store import tables as t

__all__ = [
    "EVERYONE",
    "FIRM_WIDE",
    "OWNERS",
    "STAFF",
    "Rule",
    "ScopedDep",
    "firm_only",
    "guard",
    "only",
    "operations_only",
    "scoped_router",
    "staff_only",
]

EVERYONE = frozenset(Role)
STAFF = EVERYONE - {Role.CLIENT}  # the firm's own people

# Path parameter → the household of the object it names (None: an object of no
# household, for every role the rule allows); NotFoundError when there is no such object.
Owner = Callable[[sa.Connection, str], str | None]
NOWHERE = ""  # the household of an object whose household is gone: the firm's roles' alone


# The lookups every request of a household or an account makes, built once: building
# a statement (and its cache key) costs more than the database takes to answer it.
_HOUSEHOLD = sa.select(t.households.c.household_id).where(
    t.households.c.household_id == sa.bindparam("id")
)
_ACCOUNT = sa.select(t.accounts.c.household_id).where(t.accounts.c.account_id == sa.bindparam("id"))


def _household(connection: sa.Connection, household_id: str) -> str:

    found = connection.execute(_HOUSEHOLD, {"id": household_id}).scalar()
    if found is None:
        raise NotFoundError(f"no household {household_id}")
    return str(found)


def _account(connection: sa.Connection, account_id: str) -> str:

    found = connection.execute(_ACCOUNT, {"id": account_id}).scalar()
    if found is None:
        raise NotFoundError(f"no account {account_id}")
    return str(found)


def _exists(column: sa.Column[Any], label: str) -> Owner:
    """The rule of an object of no household: that it exists."""
    query = sa.select(column).where(column == sa.bindparam("id")).limit(1)

    def owner(connection: sa.Connection, value: str) -> None:
        if connection.execute(query, {"id": value}).first() is None:
            raise NotFoundError(f"no {label} {value}")

    return owner


def _proposal(connection: sa.Connection, proposal_id: str) -> str:
    """An account's proposal is its account's household's."""
    p, a = t.proposals, t.accounts
    found = connection.execute(
        sa.select(a.c.household_id)
        .select_from(p.outerjoin(a, a.c.account_id == p.c.account_id))
        .where(p.c.proposal_id == proposal_id)
    ).first()
    if found is None:
        raise NotFoundError(f"no proposal {proposal_id}")
    return str(found.household_id or NOWHERE)


def _household_proposal(connection: sa.Connection, proposal_id: str) -> str:
    h = t.household_proposals
    found = connection.execute(
        sa.select(h.c.household_id).where(h.c.proposal_id == proposal_id)
    ).scalar()
    if found is None:
        raise NotFoundError(f"no household proposal {proposal_id}")
    return str(found)


def _request(connection: sa.Connection, request_id: str) -> str:
    """A request is its account's household's; one of a whole household, that one's."""
    r, a = t.rebalance_requests, t.accounts
    found = connection.execute(
        sa.select(a.c.household_id.label("of_account"), r.c.account_id, r.c.household_id)
        .select_from(r.outerjoin(a, a.c.account_id == r.c.account_id))
        .where(r.c.request_id == request_id)
    ).first()
    if found is None:
        raise NotFoundError(f"no request {request_id}")
    if found.account_id is not None:
        return str(found.of_account or NOWHERE)
    return str(found.household_id or NOWHERE)


FILE_IDS = 2**31 - 1  # a load's id is a database integer: no larger one exists


def _ingested_file(connection: sa.Connection, file_id: str) -> None:
    """A load in the history of files: it exists (its id a whole number, or none does)."""
    if not (file_id.isascii() and file_id.isdigit()) or int(file_id) > FILE_IDS:
        raise NotFoundError(f"no file {file_id}")
    f = t.ingest_files
    found = connection.execute(sa.select(f.c.id).where(f.c.id == int(file_id))).first()
    if found is None:
        raise NotFoundError(f"no file {file_id}")


SEQS = 2**63 - 1  # an entry's seq is a database big integer: no larger one exists


def _audit_entry(connection: sa.Connection, seq: str) -> None:
    """An entry of the audit ledger: it exists (its seq a whole number, or none does)."""
    if not (seq.isascii() and seq.isdigit()) or int(seq) > SEQS:
        raise NotFoundError(f"no audit entry {seq}")
    e = t.audit_entries
    if connection.execute(sa.select(e.c.seq).where(e.c.seq == int(seq))).first() is None:
        raise NotFoundError(f"no audit entry {seq}")


@dataclass(frozen=True, slots=True)
class Rule:
    """How a path parameter is traced: ``label`` names the object in the 404,
    ``owner`` finds its household, ``roles`` may see such objects at all."""

    label: str
    owner: Owner
    roles: frozenset[Role] = EVERYONE


OWNERS: dict[str, Rule] = {
    "household_id": Rule("household", _household),
    "account_id": Rule("account", _account),
    "proposal_id": Rule("proposal", _proposal),
    "household_proposal_id": Rule("household proposal", _household_proposal),
    "request_id": Rule("request", _request),
    # Objects of no household. Securities, prices and models are market facts and the
    # firm's published models: every role, clients too, may read them.
    "security_id": Rule("security", _exists(t.securities.c.security_id, "security")),
    "model_id": Rule("model", _exists(t.model_targets.c.model_id, "model")),
    # A run spans the firm: for the firm-wide roles. A backtest is the firm's analysis:
    # for its people, not its clients.
    "run_id": Rule("run", _exists(t.rebalance_runs.c.run_id, "run"), FIRM_WIDE),
    "backtest_id": Rule("backtest", _exists(t.backtests.c.backtest_id, "backtest"), STAFF),
    # A file loaded, and the rows it left in quarantine, may name any household's
    # accounts: for the firm-wide roles.
    "file_id": Rule("file", _ingested_file, FIRM_WIDE),
    # The audit ledger names every household's proposals and every file loaded, by id,
    # and who acted: an examiner's view of the firm, for the firm-wide roles.
    "seq": Rule("audit entry", _audit_entry, FIRM_WIDE),
    # A broker order pools many households' trades; its block's statement and
    # allocations name every account in it: for the firm-wide roles.
    "cl_ord_id": Rule("order", _exists(t.orders.c.cl_ord_id, "order"), FIRM_WIDE),
    # A break is an account's: the account's rule (its own path parameter) scopes it;
    # here only that such a break exists.
    "break_id": Rule("break", _exists(t.breaks.c.break_id, "break")),
}


class NoRuleError(RuntimeError):
    """A route names an object by a path parameter this module has no rule for."""


def guard(request: Request, engine: EngineDep) -> Principal:
    """The caller, once every object the path names is theirs to see (else 404): one
    that does not exist, one of a household out of their scope and one their role may
    not see are answered alike, ``no <label> <id>``. Who is asking is found here too,
    not as a dependency of its own: one hop to the thread pool and one connection for
    both."""
    with engine.connect() as connection:
        who = identify(request, connection)
        for name, value in request.path_params.items():
            rule = OWNERS.get(name)
            if rule is None:
                raise NoRuleError(f"no scoping rule for the path parameter {name!r}")
            if not _printable(str(value)):  # no id holds a control character
                raise NotFoundError(f"no {rule.label} {value!r}")
            try:
                household = rule.owner(connection, str(value))
                seen = who.user.role in rule.roles and who.scope.sees(household)
            except NotFoundError:
                seen = False
            if not seen:
                raise NotFoundError(f"no {rule.label} {value}")
    return who


def _printable(text: str) -> bool:
    return not any(ord(c) < 32 or ord(c) == 127 for c in text)


ScopedDep = Annotated[Principal, Depends(guard)]


def only(roles: frozenset[Role], *, verb: str = "see") -> Callable[[Principal], Principal]:
    """A role rule, as a dependency: 403 unless the caller's role is one of ``roles``
    (``verb``: what the others are told they may not do)."""
    named = ", ".join(sorted(r.value for r in roles))

    def only(who: ScopedDep) -> Principal:
        if who.user.role not in roles:
            raise ForbiddenError(f"only these roles may {verb} this: {named}")
        return who

    return only


firm_only = only(FIRM_WIDE)
"""A role rule, as a dependency: 403 unless the caller has a firm-wide role."""
staff_only = only(STAFF)
"""A role rule, as a dependency: 403 for a client."""
operations_only = only(LOADERS, verb="do")
"""A rule of what a role may do, as a dependency on the route that does it: 403 unless
the caller is in operations or an admin (who load the firm's files)."""


def scoped_router(*, dependencies: Sequence[Any] = (), **kwargs: Any) -> APIRouter:
    """A router whose every route is guarded, then depends on ``dependencies`` — a role
    rule (``Depends(firm_only)``) makes a list of such objects 403 to the other roles;
    one object of them is a 404 to those roles by its rule in :data:`OWNERS`."""
    return APIRouter(dependencies=[Depends(guard), *dependencies], **kwargs)
