"""The proposals waiting on people, read many at once, read as each is read alone.

The firm (tests/workflow/approval_firm.py): A1's own proposal and household H1's, both
prepared by ana; H1's advisers see them, dee (who advises no household) sees neither.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from tests.workflow.approval_firm import SOON, firm

from poise.comply.findings import Finding, Severity
from poise.domain.approvals import Act, Policy, Status
from poise.domain.users import Scope, scope_of
from poise.store import repo
from poise.store.repo import waiting
from poise.workflow.approvals import act, check, findings_of

POLICY = Policy(expire_after=timedelta(days=3))
WARN = Finding("firm/cash", "minimum_cash", Severity.WARN, 0.01, 0.02, "cash below 2%")


def test_states_when_read_many_at_once_then_as_each_alone(engine: sa.Engine) -> None:
    single, household, people = firm(engine)
    check(engine, proposal_id=single, findings=findings_of([WARN]), policy=POLICY, at=SOON)
    check(engine, proposal_id=household, findings=(), policy=POLICY, at=SOON)
    act(engine, proposal_id=single, what=Act.ACKNOWLEDGE, user=people["ben"], policy=POLICY,
        at=SOON, finding_id="F1", reason="seen")  # fmt: skip
    act(engine, proposal_id=household, what=Act.APPROVE, user=people["pam"], policy=POLICY,
        at=SOON)  # fmt: skip
    with engine.connect() as connection:
        found = waiting.units_in(connection, statuses=[Status.PENDING], scope=Scope(firm=True))
        assert [(a.unit.proposal_id, a.unit.household) for a in found] == [
            (single, False), (household, True)
        ]  # fmt: skip
        assert (found[0].account_id, found[1].unit.household_id) == ("A1", "H1")
        assert len(found[1].parts) == 2
        many = waiting.approval_states(connection, units=[a.unit for a in found])
        alone = {a.unit.proposal_id: repo.approval_state(connection, unit=a.unit) for a in found}
        assert many == alone
        assert many[household].approved_by == (people["pam"].user_id,)
        words = waiting.findings_kept_of(connection, proposal_ids=[single, household])
        assert words == {single: repo.findings_kept(connection, proposal_id=single)}

        def seen(who: str) -> list[str]:
            scope = scope_of(people[who])
            found = waiting.units_in(connection, statuses=[Status.PENDING], scope=scope)
            return [a.unit.proposal_id for a in found]

        assert household in seen("ben")  # an adviser of H1
        assert seen("dee") == []  # an adviser of no household
        assert (
            waiting.units_in(connection, statuses=[Status.APPROVED], scope=Scope(firm=True)) == []
        )
