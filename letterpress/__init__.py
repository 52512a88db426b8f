"""letterpress: personalised letters, QR delivery slips and a handover ledger.

For community staff who deliver food packages and a personal letter to
vulnerable households, and need to know that every household got theirs.
"""

__version__ = "0.1.0"
