"""Masking account numbers and IBANs in outputs (``--mask-accounts``).

Only the last four characters stay: ``DE89 3704 0044 0532 0130 00`` becomes
``******************3000`` in an account column, and an IBAN inside free
text (a description, a reference) becomes ``****30 00``.  The same rules
exist as DuckDB macros, installed by :func:`recon.db.connect`, for outputs
written by ``COPY``, and as Python functions for everything else::

    recon_mask(s)        a whole account / IBAN value
    recon_mask_text(s)   IBAN-looking words inside free text
"""

from __future__ import annotations

import re

KEEP = 4

#: An IBAN inside text: country, check digits, 11..30 more letters/digits,
#: optionally in groups separated by single spaces; the last four are kept.
IBAN_IN_TEXT = r"\b[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]){7,26}((?:[ ]?[A-Z0-9]){4})\b"

MACROS_SQL = rf"""
create or replace temp macro recon_mask(s) as
    case when s is null then null
         when length(regexp_replace(s, '\s', '', 'g')) <= {KEEP}
              then regexp_replace(s, '\s', '', 'g')
         else repeat('*', length(regexp_replace(s, '\s', '', 'g')) - {KEEP})
              || right(regexp_replace(s, '\s', '', 'g'), {KEEP}) end;
create or replace temp macro recon_mask_text(s) as
    regexp_replace(s, '{IBAN_IN_TEXT}', '****\1', 'g');
"""

_IBAN_RE = re.compile(IBAN_IN_TEXT)


def mask(value: str | None) -> str | None:
    """An account number or IBAN with all but its last four characters as '*'."""
    if value is None:
        return None
    clean = re.sub(r"\s", "", value)
    if len(clean) <= KEEP:
        return clean
    return "*" * (len(clean) - KEEP) + clean[-KEEP:]


def mask_text(value: str | None) -> str | None:
    """Free text with every IBAN-looking word masked but for its last four characters."""
    if value is None:
        return None
    return _IBAN_RE.sub(lambda m: "****" + m.group(1), value)


def mask_sql(expr: str) -> str:
    """SQL masking the account/IBAN value of `expr` (needs the connect() macros)."""
    return f"recon_mask({expr})"


def mask_text_sql(expr: str) -> str:
    """SQL masking IBANs inside the free text of `expr`."""
    return f"recon_mask_text({expr})"
