"""Minor units of currencies: one table for the loaders and the outputs."""

from __future__ import annotations

#: Minor-unit exponent (ISO 4217) of the currencies that do not use 2 decimals.
CURRENCY_EXPONENTS = {
    "JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "HUF": 2, "XOF": 0, "XAF": 0,
    "PYG": 0, "UGX": 0, "XPF": 0, "KMF": 0, "GNF": 0, "DJF": 0, "BIF": 0, "RWF": 0,
    "VUV": 0,
    "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3,
}
