"""The audit ledger: every stage's decisions, appended and never changed, as the leaves
of an RFC 9162 Merkle tree whose heads the firm signs.

Owns: the tree's hashing and proofs (``merkle``, pure), canonical JSON and the entry's
serialisation (``canonical``, pure), the signed checkpoint's bytes and the firm's key
(``keys``), appending, reading, checkpointing and verifying the ledger in the store
(``ledger``), and a verifier that needs nothing of poise (``verifier``: the standard
library and ``cryptography`` alone, to be copied out and given to an examiner).
May not touch: any other stage's tables. Other stages call :func:`ledger.append` inside
their own transaction; the ledger never reads what they decided, only its hash.
"""
