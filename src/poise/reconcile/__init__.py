"""Reconciliation: fills into lots and cash, custodian positions against the books,
and the breaks between them. Pure functions over typed records; the shells that read
and write the store are in :mod:`poise.workflow`."""
