"""The page of the compliance rules in force for an account: the layers that apply,
each rule's parameters and where each was set — for those who see the account."""

from __future__ import annotations

from tests.web.test_approval_pages import Browser, app, browser, firm  # noqa: F401 (fixtures)


def test_rules_page_when_the_default_rules_apply_then_each_rule_and_where_it_was_set(
    browser: Browser,  # noqa: F811 (the fixture imported above)
) -> None:
    page = browser.sign_in("ana").get("/accounts/10000001")
    assert 'href="/accounts/10000001/rules"' in page
    rules = browser.get("/accounts/10000001/rules")
    assert "<code>poise:firm.yaml</code>" in rules
    for rule_id in ("wash-sale", "no-negative-cash", "price-moved", "risk-tolerance"):
        assert f"<td>{rule_id}</td>" in rules
    assert "<code>poise:firm.yaml:" in rules  # where each field was set
    assert "<td>wash-sale</td>" in browser.sign_in("pam").get("/accounts/10000003/rules")
    outsider = browser.sign_in("hal").client.get("/accounts/10000001/rules")
    assert outsider.status_code == 404
