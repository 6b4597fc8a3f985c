"""Approvals through the API: each act and each refusal, as the one machine decides it.

The firm is ``tests.api.reads_firm``'s: H1 (accounts 10000001 and 10000002, and a
household proposal of a run, pending, with a cash warning to acknowledge) and H2
(10000003). Its people: ana and ben advise H1, hal advises H2, pam and pia manage
portfolios, cora is compliance, olu operations, gus the admin, and the Garcias are H1's
clients. Proposals are made the normal way — an adviser rebalancing an account through
the API prepares its proposal — and then given the findings a test needs by the check
the compliance shell calls (``check`` replaces the findings of a proposal not yet
approved, whatever the rules found when it was made).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.api.reads_firm import AS_OF, WARNING, add_people, build

from poise.api.app import API_PREFIX, create_app
from poise.audit.ledger import entries
from poise.comply.findings import Finding, Severity
from poise.domain.approvals import Policy
from poise.domain.users import Role
from poise.settings import Settings
from poise.store import repo
from poise.workflow.approvals import check, findings_of

PEOPLE: dict[str, tuple[Role, dict[str, Any]]] = {
    "ana": (Role.ADVISER, {"households": ["H1"]}),
    "ben": (Role.ADVISER, {"households": ["H1"]}),
    "hal": (Role.ADVISER, {"households": ["H2"]}),
    "pam": (Role.PORTFOLIO_MANAGER, {}),
    "pia": (Role.PORTFOLIO_MANAGER, {}),
    "cora": (Role.COMPLIANCE, {}),
    "olu": (Role.OPERATIONS, {}),
    "gus": (Role.ADMIN, {}),
    "garcia": (Role.CLIENT, {"household_id": "H1"}),
}
DAY = AS_OF.date().isoformat()
BLOCK = Finding(
    rule_id="firm/restricted", kind="restricted_list", severity=Severity.BLOCK,
    measured="true", limit="false", explanation="AAPL is on the firm's restricted list",
    securities=("AAPL",),
)  # fmt: skip


@dataclass(frozen=True)
class Firm:
    engine: sa.Engine
    examples: dict[str, str]
    tokens: dict[str, str]
    folder: Path

    def client(self, **settings: Any) -> TestClient:
        return TestClient(create_app(Settings(workers=1, **settings), engine=self.engine))


@pytest.fixture
def firm(tmp_path: Path) -> Iterator[Firm]:
    engine, examples = build(tmp_path)
    yield Firm(engine, examples, add_people(engine, PEOPLE), tmp_path)
    engine.dispose()


@pytest.fixture
def client(firm: Firm) -> Iterator[TestClient]:
    with firm.client() as c:
        yield c


def auth(firm: Firm, who: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {firm.tokens[who]}", **headers}


def propose(client: TestClient, firm: Firm, who: str, account_id: str = "10000001") -> str:
    """``who`` rebalances the account (optimize: its own proposal, no household's part
    superseded) and so prepares its proposal: its id."""
    made = client.post(
        f"{API_PREFIX}/accounts/{account_id}/rebalance",
        json={"method": "optimize", "as_of": DAY},
        headers=auth(firm, who),
    )
    assert made.status_code == 201, made.text
    return str(made.json()["proposal_id"])


def checked(firm: Firm, proposal_id: str, *found: Finding) -> None:
    """The firm's rules found ``found`` (none: it passed)."""
    check(firm.engine, proposal_id=proposal_id, findings=findings_of(found), policy=Policy())


def url(proposal_id: str, what: str = "approval", *, household: bool = False) -> str:
    kind = "household-proposals" if household else "proposals"
    return f"{API_PREFIX}/{kind}/{proposal_id}/{what}"


def post(
    client: TestClient, firm: Firm, who: str, proposal_id: str, what: str, *,
    household: bool = False, **body: str,
) -> Any:  # fmt: skip
    return client.post(url(proposal_id, what, household=household), json=body,
                       headers=auth(firm, who))  # fmt: skip


def standing(client: TestClient, firm: Firm, who: str, proposal_id: str, **kw: bool) -> Any:
    answer = client.get(url(proposal_id, **kw), headers=auth(firm, who))
    assert answer.status_code == 200, answer.text
    return answer.json()


def ledger(firm: Firm, proposal_id: str) -> list[tuple[str, str, str]]:
    """The approval entries about the proposal: action, actor's username, reason."""
    with firm.engine.connect() as connection:
        names = {u.user_id: u.username for u in repo.users(connection)}
        return [
            (e.action, names.get(e.actor, e.actor), e.reason)
            for e in entries(connection, subject=proposal_id, action="proposal.*")
        ]


def test_approve_when_the_preparer_asks_then_403_four_eyes_and_another_approves_once(
    client: TestClient, firm: Firm
) -> None:
    proposal = propose(client, firm, "ana")
    checked(firm, proposal)
    stands = standing(client, firm, "ana", proposal)
    assert (stands["status"], stands["prepared_by"], stands["approved_by"]) == (
        "pending", "ana", []
    )  # fmt: skip
    assert (stands["approvers_needed"], stands["more_needed"]) == (1, 1)
    mine = {a["act"]: a for a in stands["acts"]}
    assert (mine["approve"]["may"], mine["reject"]["may"]) == (False, True)
    assert "four eyes" in mine["approve"]["why_not"]
    refused = post(client, firm, "ana", proposal, "approve")
    assert refused.status_code == 403
    assert "four eyes" in refused.json()["detail"]
    approved = post(client, firm, "ben", proposal, "approve")
    assert approved.status_code == 200, approved.text
    outcome = approved.json()
    assert (outcome["status_before"], outcome["status"], outcome["changed"], outcome["said"]) == (
        "pending", "approved", True, "approved"
    )  # fmt: skip
    assert outcome["ledger_entry"] is not None
    again = post(client, firm, "ben", proposal, "approve")
    assert again.status_code == 200  # the same approval again: no change, not an error
    assert (again.json()["changed"], again.json()["said"], again.json()["ledger_entry"]) == (
        False, "approved already", None
    )  # fmt: skip
    stands = standing(client, firm, "pam", proposal)
    assert (stands["status"], stands["approved_by"], stands["more_needed"]) == (
        "approved", ["ben"], 0
    )  # fmt: skip
    assert ledger(firm, proposal)[-1] == ("proposal.approve", "ben", "")
    assert [a for a, _, _ in ledger(firm, proposal)].count("proposal.approve") == 1


def test_approve_when_above_the_threshold_then_two_different_approvers_are_needed(
    firm: Firm,
) -> None:
    with firm.client(approval_two_above=Decimal(1000)) as client:
        proposal = propose(client, firm, "ana")
        checked(firm, proposal)
        assert standing(client, firm, "ben", proposal)["approvers_needed"] == 2
        first = post(client, firm, "ben", proposal, "approve").json()
        assert (first["status"], first["said"]) == ("pending", "approved, 1 more needed")
        twice = post(client, firm, "ben", proposal, "approve").json()  # one approver counts once
        assert (twice["changed"], twice["status"]) == (False, "pending")
        assert "a second approver is needed" in twice["said"]
        second = post(client, firm, "pam", proposal, "approve").json()
        assert (second["status"], second["changed"]) == ("approved", True)
        stands = standing(client, firm, "ana", proposal)
        assert (stands["approved_by"], stands["more_needed"]) == (["ben", "pam"], 0)


def test_reject_when_no_reason_then_422_and_with_one_then_rejected_for_good(
    client: TestClient, firm: Firm
) -> None:
    proposal = propose(client, firm, "ana")
    checked(firm, proposal)
    missing = post(client, firm, "cora", proposal, "reject", reason=" ")
    assert missing.status_code == 422
    assert "needs a reason" in missing.json()["detail"]
    unread = client.post(url(proposal, "reject"), headers=auth(firm, "cora"))  # no body at all
    assert unread.status_code == 422
    rejected = post(client, firm, "cora", proposal, "reject", reason="client travelling")
    assert rejected.status_code == 200, rejected.text
    assert (rejected.json()["status"], rejected.json()["reason"]) == (
        "rejected", "client travelling"
    )  # fmt: skip
    late = post(client, firm, "ben", proposal, "approve")
    assert late.status_code == 409
    assert "nothing more can happen" in late.json()["detail"]
    assert ledger(firm, proposal)[-1] == ("proposal.reject", "cora", "client travelling")


@pytest.mark.parametrize(
    ("who", "what"),
    [
        ("olu", "approve"), ("cora", "approve"), ("gus", "approve"), ("garcia", "approve"),
        ("olu", "reject"), ("garcia", "reject"),
        ("ana", "release"), ("cora", "release"),
        ("pam", "override"), ("ana", "override"), ("olu", "override"),
        ("gus", "acknowledge"), ("garcia", "acknowledge"),
    ],
)  # fmt: skip
def test_act_when_the_role_may_never_do_it_then_403_and_nothing_written(
    client: TestClient, firm: Firm, who: str, what: str
) -> None:
    proposal = propose(client, firm, "pam")
    checked(firm, proposal, BLOCK)
    before = ledger(firm, proposal)
    body = {"reason": "because"} | ({"finding_id": "F1"} if what in ("override", "acknowledge")
                                    else {})  # fmt: skip
    answer = client.post(url(proposal, what), json=body, headers=auth(firm, who))
    assert answer.status_code == 403, answer.text
    assert answer.json()["detail"].startswith(f"only these roles may {what}")
    assert ledger(firm, proposal) == before


def test_acknowledge_when_a_warning_stands_then_approval_waits_for_it(
    client: TestClient, firm: Firm
) -> None:
    proposal = propose(client, firm, "ana")
    checked(firm, proposal, WARNING)
    waiting = post(client, firm, "ben", proposal, "approve")
    assert waiting.status_code == 409
    assert waiting.json()["detail"] == "acknowledge the warnings first: F1"
    assert post(client, firm, "ben", proposal, "acknowledge", finding_id="F1",
                reason="").status_code == 422  # fmt: skip
    unknown = post(client, firm, "ben", proposal, "acknowledge", finding_id="F9", reason="ok")
    assert unknown.status_code == 422
    assert "no finding 'F9'" in unknown.json()["detail"]
    not_a_block = post(client, firm, "cora", proposal, "override", finding_id="F1", reason="ok")
    assert not_a_block.status_code == 409
    assert "is a warning" in not_a_block.json()["detail"]
    done = post(client, firm, "ana", proposal, "acknowledge", finding_id="F1",
                reason="the client asked for it")  # fmt: skip
    assert done.status_code == 200, done.text
    assert (done.json()["said"], done.json()["status"]) == (
        "acknowledged F1: the client asked for it", "pending"
    )  # fmt: skip
    (finding,) = standing(client, firm, "ben", proposal)["findings"]
    assert finding | {"cleared_at": None} == {
        "finding_id": "F1", "severity": "warn", "rule_id": "firm/cash", "kind": "minimum_cash",
        "explanation": WARNING.explanation, "detail": WARNING.as_json(),
        "cleared": "acknowledged", "cleared_by": "ana", "cleared_at": None,
        "reason": "the client asked for it", "may_clear": False,
        "why_not": "F1 was cleared already by ana",
    }  # fmt: skip
    assert post(client, firm, "ben", proposal, "approve").json()["status"] == "approved"


def test_override_when_a_block_stands_then_compliance_alone_and_the_proposal_goes_on(
    client: TestClient, firm: Firm
) -> None:
    proposal = propose(client, firm, "ana")
    checked(firm, proposal, BLOCK, WARNING)
    stands = standing(client, firm, "cora", proposal)
    assert (stands["status"], stands["waiting"]) == ("blocked", ["F1", "F2"])
    assert [(f["finding_id"], f["may_clear"]) for f in stands["findings"]] == [
        ("F1", True), ("F2", True)
    ]  # fmt: skip
    by_adviser = standing(client, firm, "ben", proposal)["findings"][0]
    assert (by_adviser["may_clear"], by_adviser["why_not"]) == (
        False, "only these roles may override a proposal: compliance"
    )  # fmt: skip
    blocked = post(client, firm, "ben", proposal, "approve")
    assert blocked.status_code == 409
    assert "not a blocked one" in blocked.json()["detail"]
    as_warning = post(client, firm, "cora", proposal, "acknowledge", finding_id="F1", reason="x")
    assert as_warning.status_code == 409
    assert "compliance overrides it" in as_warning.json()["detail"]
    no_reason = post(client, firm, "cora", proposal, "override", finding_id="F1", reason="")
    assert no_reason.status_code == 422
    done = post(client, firm, "cora", proposal, "override", finding_id="F1",
                reason="research list out of date")  # fmt: skip
    assert done.status_code == 200, done.text
    assert (done.json()["status_before"], done.json()["status"]) == ("blocked", "pending")
    stands = standing(client, firm, "ben", proposal)
    assert stands["waiting"] == ["F2"]
    assert (stands["findings"][0]["cleared"], stands["findings"][0]["cleared_by"]) == (
        "overridden", "cora"
    )  # fmt: skip
    assert ledger(firm, proposal)[-1] == (
        "proposal.override", "cora", "research list out of date"
    )  # fmt: skip


def test_release_when_approved_then_released_and_not_before(client: TestClient, firm: Firm) -> None:
    proposal = propose(client, firm, "ana")
    checked(firm, proposal)
    early = post(client, firm, "olu", proposal, "release")
    assert early.status_code == 409
    assert early.json()["detail"] == (
        "only an approved proposal is released, not a pending one"
    )  # fmt: skip
    post(client, firm, "ben", proposal, "approve")
    released = post(client, firm, "pam", proposal, "release")
    assert released.status_code == 200, released.text
    assert (released.json()["status_before"], released.json()["status"]) == (
        "approved", "released"
    )  # fmt: skip


def test_approve_when_the_proposal_is_too_old_then_409_says_it_expired_and_it_is_kept_so(
    firm: Firm,
) -> None:
    with firm.client(approval_expire_hours=0.0) as client:
        proposal = propose(client, firm, "ana")
        checked(firm, proposal)
        ended = post(client, firm, "ben", proposal, "approve")
        assert ended.status_code == 409
        assert ended.json()["detail"].startswith(f"{proposal} was not approved but expired: made ")
        stands = standing(client, firm, "ben", proposal)
        assert stands["status"] == "expired"
        assert "older than 0 days" in stands["status_reason"]
        assert ledger(firm, proposal)[-1][:2] == ("proposal.expire", "ben")


def test_standing_when_an_accounts_proposal_is_part_of_a_households_then_it_points_to_it(
    client: TestClient, firm: Firm
) -> None:
    household, part = firm.examples["household_proposal_id"], firm.examples["proposal_id"]
    whole = standing(client, firm, "ben", household, household=True)
    assert (whole["household"], whole["household_id"], whole["status"]) == (True, "H1", "pending")
    assert part in whole["parts"]
    assert (whole["prepared_by"], whole["waiting"]) == ("system", ["F1"])  # a run's, unasked
    one = standing(client, firm, "ben", part)
    assert (one["part_of"], one["household"], one["account_id"]) == (household, False, "10000001")
    assert (one["status"], one["findings"], one["approvers_needed"]) == (None, [], None)
    assert {a["may"] for a in one["acts"]} == {False}
    apart = post(client, firm, "ben", part, "approve")
    assert apart.status_code == 409
    assert f"part of household proposal {household}" in apart.json()["detail"]


def test_act_when_another_households_adviser_asks_then_404_as_for_none(
    client: TestClient, firm: Firm
) -> None:
    proposal = propose(client, firm, "ana")
    checked(firm, proposal)
    for what, body in (("approval", None), ("approve", {}), ("reject", {"reason": "no"})):
        answer = (
            client.get(url(proposal), headers=auth(firm, "hal"))
            if body is None
            else client.post(url(proposal, what), json=body, headers=auth(firm, "hal"))
        )
        assert answer.status_code == 404, (what, answer.text)
        assert answer.json()["detail"] == f"no proposal {proposal}"
    assert standing(client, firm, "ana", proposal)["status"] == "pending"


def listed(client: TestClient, firm: Firm, who: str, path: str, **query: str) -> list[str]:
    answer = client.get(f"{API_PREFIX}/{path}", params=query, headers=auth(firm, who))
    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert page["total"] == len(page["items"])
    return [item["proposal_id"] for item in page["items"]]


def test_inbox_when_each_person_asks_then_what_they_may_approve_of_their_households(
    firm: Firm,
) -> None:
    with firm.client(approval_two_above=Decimal(5000)) as client:
        household = firm.examples["household_proposal_id"]  # H1's, the system's, pending
        anas = propose(client, firm, "ana")  # H1's: above 5,000, two approvers
        pams = propose(client, firm, "pam", "10000003")  # H2's
        blocked = propose(client, firm, "ben", "10000002")
        for proposal in (anas, pams):
            checked(firm, proposal)
        checked(firm, blocked, BLOCK)
        assert listed(client, firm, "ana", "approvals/inbox") == [household]  # four eyes
        assert listed(client, firm, "ben", "approvals/inbox") == [household, anas]
        assert listed(client, firm, "hal", "approvals/inbox") == [pams]  # H2's only
        assert listed(client, firm, "pam", "approvals/inbox") == [household, anas]
        assert listed(client, firm, "pia", "approvals/inbox") == [household, anas, pams]
        notional = {p: Decimal(standing(client, firm, "pia", p, household=p == household)
                               ["notional"]) for p in (household, anas, pams)}  # fmt: skip
        limit = notional[pams]
        assert listed(client, firm, "pia", "approvals/inbox", max_notional=str(limit)) == [
            p for p in (household, anas, pams) if notional[p] <= limit
        ]  # fmt: skip
        item = client.get(f"{API_PREFIX}/approvals/inbox", headers=auth(firm, "ben")).json()
        first, second = item["items"]
        assert (first["waiting"], first["findings"][0]["severity"]) == (["F1"], "warn")
        assert (second["prepared_by"], second["approvers_needed"], second["more_needed"]) == (
            "ana", 2, 2
        )  # fmt: skip
        assert Decimal(second["notional"]) > 5000
        post(client, firm, "ben", anas, "approve")  # one of two: still pending
        assert listed(client, firm, "ben", "approvals/inbox") == [household]  # not again
        assert listed(client, firm, "pam", "approvals/inbox") == [household, anas]
        for who in ("cora", "olu", "gus", "garcia"):
            refused = client.get(f"{API_PREFIX}/approvals/inbox", headers=auth(firm, who))
            assert refused.status_code == 403, who


def test_queue_when_each_person_asks_then_what_findings_hold_up_in_their_households(
    client: TestClient, firm: Firm
) -> None:
    household = firm.examples["household_proposal_id"]  # pending, its warning standing
    blocked = propose(client, firm, "ana")
    clear = propose(client, firm, "ana", "10000002")
    h2 = propose(client, firm, "pam", "10000003")
    checked(firm, blocked, BLOCK)
    checked(firm, clear)
    checked(firm, h2, WARNING)
    for who in ("cora", "olu", "pam"):
        assert sorted(listed(client, firm, who, "compliance/queue")) == sorted(
            [household, blocked, h2]
        ), who
    assert sorted(listed(client, firm, "ana", "compliance/queue")) == sorted([household, blocked])
    assert listed(client, firm, "hal", "compliance/queue") == [h2]
    page = client.get(f"{API_PREFIX}/compliance/queue", headers=auth(firm, "cora")).json()
    found = {item["proposal_id"]: item for item in page["items"]}
    assert found[blocked]["status"] == "blocked"
    assert found[blocked]["findings"][0]["explanation"] == BLOCK.explanation
    post(client, firm, "hal", h2, "acknowledge", finding_id="F1", reason="seen")
    assert h2 not in listed(client, firm, "cora", "compliance/queue")
    for who in ("gus", "garcia"):
        refused = client.get(f"{API_PREFIX}/compliance/queue", headers=auth(firm, who))
        assert refused.status_code == 403, who


def test_bulk_when_a_runs_proposals_are_approved_then_each_says_what_came_of_it(
    client: TestClient, firm: Firm
) -> None:
    run, household = firm.examples["run_id"], firm.examples["household_proposal_id"]
    bulk = f"{API_PREFIX}/approvals/bulk"
    waiting = client.post(bulk, json={"run_id": run}, headers=auth(firm, "pam")).json()
    assert (waiting["run_id"], waiting["approved"]) == (run, [])
    assert waiting["refused"] == [
        {"proposal_id": household, "why": "acknowledge the warnings first: F1"}
    ]
    post(client, firm, "ana", household, "acknowledge", household=True, finding_id="F1",
         reason="cash comes next week")  # fmt: skip
    small = client.post(bulk, json={"run_id": run, "max_notional": "1000"},
                        headers=auth(firm, "pam")).json()  # fmt: skip
    assert re.fullmatch(r"notional [\d,]+\.\d\d above 1,000\.00", small["refused"][0]["why"])
    others = client.post(bulk, json={"run_id": run, "households": ["H2"]},
                         headers=auth(firm, "pam")).json()  # fmt: skip
    assert others == {"run_id": run, "approved": [], "approved_already": [], "refused": []}
    unseen = client.post(bulk, json={"run_id": run}, headers=auth(firm, "hal"))
    assert unseen.status_code == 404  # H2's adviser: none of the run's households are theirs
    assert unseen.json()["detail"] == f"no run {run}"
    done = client.post(bulk, json={"run_id": run}, headers=auth(firm, "ana")).json()
    (approved,) = done["approved"]
    assert (approved["proposal_id"], approved["status"]) == (household, "approved")
    again = client.post(bulk, json={"run_id": run}, headers=auth(firm, "ana")).json()
    assert [o["said"] for o in again["approved_already"]] == ["approved already"]
    assert client.post(bulk, json={"run_id": run}, headers=auth(firm, "olu")).status_code == 403


def test_bulk_when_proposals_are_named_then_each_in_its_own_right(
    client: TestClient, firm: Firm
) -> None:
    mine = propose(client, firm, "ben")
    other = propose(client, firm, "pam", "10000003")  # H2's: not ana's to see
    for proposal in (mine, other):
        checked(firm, proposal)
    answer = client.post(f"{API_PREFIX}/approvals/bulk",
                         json={"proposal_ids": [mine, other, "nope"]},
                         headers=auth(firm, "ana"))  # fmt: skip
    assert answer.status_code == 200, answer.text
    done = answer.json()
    assert [o["proposal_id"] for o in done["approved"]] == [mine]
    assert done["refused"] == [
        {"proposal_id": other, "why": f"no proposal {other!r}"},
        {"proposal_id": "nope", "why": "no proposal 'nope'"},
    ]
    both = client.post(f"{API_PREFIX}/approvals/bulk", json={"proposal_ids": [mine], "run_id": "x"},
                       headers=auth(firm, "ana"))  # fmt: skip
    assert both.status_code == 422


def test_reject_when_sent_twice_with_one_key_then_answered_once(
    client: TestClient, firm: Firm
) -> None:
    proposal = propose(client, firm, "ana")
    checked(firm, proposal)
    headers = auth(firm, "ben", **{"Idempotency-Key": "reject-once"})
    body = {"reason": "client travelling"}
    first = client.post(url(proposal, "reject"), json=body, headers=headers)
    again = client.post(url(proposal, "reject"), json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert [a for a, _, _ in ledger(firm, proposal)].count("proposal.reject") == 1
    unkeyed = client.post(url(proposal, "reject"), json=body, headers=auth(firm, "ben"))
    assert unkeyed.status_code == 409  # without the key: the machine says it is final
