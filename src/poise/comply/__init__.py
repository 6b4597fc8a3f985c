"""Pre-trade compliance: the firm's rules, checked against a proposal.

Owns: the portfolio a rule looks at, before and after a proposal's trades
(``views``: built from the engine's own problems and proposals), what a rule finds
(``findings``), the rule kinds themselves (``rules``: one small class each, parameters
in the constructor and ``check(before, after, trades) -> list[Finding]``), the terms a
rule gives the optimiser where it has a twin there (``twins``: what is optimised and
what is checked come from one object), rule sets layered firm → model → household →
account in YAML (``rulesets``), and custom rules as expressions in the Common
Expression Language (``rules.expression``).

Weights (a holding's share of its account or household, turnover, volatility) are
float fractions; money (values, cash, gains, order sizes) is Decimal, exact in every
finding.

May import: ``poise.domain`` and the engine's value types (a ``Problem``, a
``Proposal`` and its trades, the ``RiskModel``), to read what it checks. May not
touch: the store, the bus, files (but a rule set's text handed in), or the clock —
the time a check is made at is handed in too.
"""
