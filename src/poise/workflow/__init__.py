"""The shells that run the stages: load from the store, call a pure core, persist.

Owns: the order of work (which files load first, one transaction per file) and
the reports the commands print.
May not touch: finance rules; those live in the stage packages it calls.
"""
