"""The audit ledger: every stage's decisions, appended and never changed, as the leaves
of an RFC 9162 Merkle tree whose heads the firm signs (docs/audit.md).

Owns: the tree's hashing and proofs (``merkle``) and canonical JSON and an entry's
leaf (``canonical``), both pure; the firm's Ed25519 key file and the bytes a
checkpoint signs (``keys``); and the ledger's shell over the store — appending,
reading and keeping checkpoints (``ledger``), verifying the whole ledger
(``verify``), signing checkpoints and writing proofs and exports (``proofs``). And a
verifier that needs nothing of poise (``verifier``: the standard library and
``cryptography`` alone, to be copied out and given to a client or an examiner).
May not touch: any table but its own two. Other stages call :func:`ledger.append`
inside their own transaction with the data their entry concerns; the ledger keeps
only its hash.
"""
