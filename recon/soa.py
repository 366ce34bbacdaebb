"""`recon statements`: a statement of account per customer, as HTML and PDF (对账单).

For each customer with receivable lines (or the one given by ``--customer``)
and each currency they use, the statement shows the opening balance on
``--from`` (every line dated before it), every invoice, credit note and
receipt dated ``--from`` .. ``--to`` with a running balance, the closing
balance on ``--to``, and the aging of what is open on ``--to``.  The closing
balance is the sum of the customer's ledger lines up to ``--to`` (plus bank
receipts matched straight to invoices, see :mod:`recon.openitems`), and the
aging adds up to it: both tie to the ledger to the cent.

Files in ``--out DIR``: ``<customer>.html``, ``<customer>.pdf`` (ids made
file-safe) and ``index.html`` listing every statement with its closing
balances.  The language is the customer's (master ``language``: ``en`` or
``zh``; English when unknown).  HTML comes from ``templates/soa_statement.html.j2``
and ``soa_index.html.j2``; the PDF is drawn with reportlab, Chinese text in
its built-in CID font STSong-Light (nothing to download or embed).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
import jinja2
import polars as pl

from recon import openitems
from recon.aging import DEFAULT_BUCKETS, bucket_columns
from recon.db import round_amount
from recon.errors import ReconError

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Statement of account", "customer": "Customer", "customer_id": "Customer no.",
        "period": "Period", "currency": "Currency", "date": "Date", "type": "Type",
        "document": "Document", "reference": "Reference", "description": "Description",
        "debit": "Debit", "credit": "Credit", "balance": "Balance",
        "opening": "Opening balance", "closing": "Closing balance", "total": "Total open",
        "aging_title": "Aging of open items on {to}", "invoice": "Invoice",
        "credit_note": "Credit note", "receipt": "Receipt", "not_due": "Not due",
        "days": "{lo}–{hi} days overdue", "over": "Over {n} days overdue",
        "footer": "Please check this statement and tell us of any difference within 14 days.",
        "index_title": "Statements of account", "files": "Files",
    },
    "zh": {
        "title": "对账单", "customer": "客户", "customer_id": "客户编号", "period": "期间",
        "currency": "币种", "date": "日期", "type": "类型", "document": "单据号",
        "reference": "参考号", "description": "摘要", "debit": "借方", "credit": "贷方",
        "balance": "余额", "opening": "期初余额", "closing": "期末余额", "total": "未结合计",
        "aging_title": "截至{to}未结项目账龄", "invoice": "发票", "credit_note": "贷项通知单",
        "receipt": "收款", "not_due": "未到期", "days": "逾期{lo}–{hi}天",
        "over": "逾期{n}天以上",
        "footer": "请核对本对账单，如有差异请于14日内告知。",
        "index_title": "对账单", "files": "文件",
    },
}


def labels(language: str | None) -> dict[str, str]:
    """The labels of `language` (English for anything unknown)."""
    return LABELS.get((language or "en")[:2].lower(), LABELS["en"])


def money(value: Decimal | None, currency: str) -> str:
    """`1234.5` -> `1,234.50` with the currency's minor units, rounded as recon_fmt
    rounds (half away from zero); empty for None."""
    if value is None:
        return ""
    return f"{round_amount(Decimal(value), currency):,f}"


def safe_name(customer: str) -> str:
    """A file name for a customer id, one per id: an id that had to be changed (华东001,
    A/B) gets a digest of itself, so 华东001 and 华南001 are not both `___001`."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", customer).strip(".")
    if name == customer:
        return name
    return f"{name or '_'}-{hashlib.sha256(customer.encode()).hexdigest()[:10]}"


def bucket_labels(buckets: tuple[int, ...], lab: dict[str, str]) -> list[str]:
    """Human labels of the aging buckets, in `bucket_columns` order."""
    out = [lab["not_due"]]
    lo = 1
    for b in buckets:
        out.append(lab["days"].format(lo=lo, hi=b))
        lo = b + 1
    out.append(lab["over"].format(n=buckets[-1] if buckets else 0))
    return out


def _frames(
    con: duckdb.DuckDBPyConnection, d_from: date, d_to: date, customer: str | None,
    buckets: tuple[int, ...],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(period lines with running balance, one row per customer and currency)."""
    only = "and customer = ?" if customer else ""
    params: list[Any] = [customer] if customer else []
    sums = ", ".join(f"coalesce(sum(open_amount) filter (where {cond}), 0) as {name}"
                     for name, cond in bucket_columns(buckets))
    heads = con.sql(f"""
        select customer, currency, any_value(name) as name, any_value(language) as language,
               any_value(email) as email,
               coalesce(sum(effect) filter (where date < ?), 0) as opening,
               coalesce(sum(effect) filter (where date >= ? and effect > 0), 0) as debits,
               coalesce(-sum(effect) filter (where date >= ? and effect < 0), 0) as credits,
               coalesce(sum(effect), 0) as closing,
               count(*) filter (where date >= ?) as n_lines, {sums},
               coalesce(sum(open_amount), 0) as open_total
        from {openitems.ITEMS} where true {only}
        group by customer, currency
        having opening <> 0 or closing <> 0 or n_lines > 0
        order by customer, currency""", params=[d_from, d_from, d_from, d_from, *params]).pl()
    lines = con.sql(f"""
        select customer, currency, date, kind, source_id, reference, description, effect,
               sum(effect) over (partition by customer, currency
                                 order by date, source_id, txn_id rows unbounded preceding) as run
        from {openitems.ITEMS} where date >= ? {only}
        order by customer, currency, date, source_id, txn_id""", params=[d_from, *params]).pl()
    return lines, heads


def _section(head: dict[str, Any], lines: pl.DataFrame, lab: dict[str, str],
             buckets: tuple[int, ...]) -> dict[str, Any]:
    cur = head["currency"]
    opening = head["opening"]
    rows = [
        {"date": r["date"].isoformat(), "kind": lab.get(r["kind"], r["kind"]),
         "doc": r["source_id"] or "", "reference": r["reference"] or "",
         "description": r["description"] or "",
         "debit": money(r["effect"], cur) if r["effect"] > 0 else "",
         "credit": money(-r["effect"], cur) if r["effect"] < 0 else "",
         "balance": money(opening + r["run"], cur)}
        for r in lines.iter_rows(named=True)
    ]
    names = [n for n, _ in bucket_columns(buckets)]
    return {
        "currency": cur, "opening": money(opening, cur), "closing": money(head["closing"], cur),
        "closing_value": head["closing"], "debits": money(head["debits"], cur),
        "credits": money(head["credits"], cur), "lines": rows,
        "aging": list(zip(bucket_labels(buckets, lab), [money(head[n], cur) for n in names],
                          strict=True)),
        "open_total": money(head["open_total"], cur),
    }


@dataclass(frozen=True, slots=True)
class Written:
    """One customer's statement files."""

    customer: str
    name: str
    language: str
    html: Path
    pdf: Path
    closing: dict[str, Decimal]


def statement_contexts(
    con: duckdb.DuckDBPyConnection, d_from: date, d_to: date, *, customer: str | None = None,
    buckets: tuple[int, ...] = DEFAULT_BUCKETS, policy: str = "oldest_first",
) -> list[dict[str, Any]]:
    """Everything a statement shows, per customer (amounts already formatted)."""
    if d_from > d_to:
        raise ReconError(f"--from {d_from} is after --to {d_to}")
    openitems.prepare(con, d_to, policy)
    lines, heads = _frames(con, d_from, d_to, customer, buckets)
    if customer and heads.height == 0:
        raise ReconError(f"--customer {customer!r}: no receivable lines for this customer "
                         f"up to {d_to}")
    out = []
    for (cid,), group in heads.group_by(["customer"], maintain_order=True):
        first = group.row(0, named=True)
        lab = labels(first["language"])
        mine = lines.filter(pl.col("customer") == cid)
        sections = [
            _section(h, mine.filter(pl.col("currency") == h["currency"]), lab, buckets)
            for h in group.iter_rows(named=True)
        ]
        out.append({
            "customer": cid, "name": first["name"] or cid,
            "language": "zh" if lab is LABELS["zh"] else "en",
            "email": first["email"], "L": lab, "sections": sections,
            "date_from": d_from.isoformat(), "date_to": d_to.isoformat(),
            "aging_title": lab["aging_title"].format(to=d_to.isoformat()),
        })
    return out


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """Jinja environment over recon/templates (HTML autoescaped)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("recon", "templates"),
        autoescape=jinja2.select_autoescape(["html.j2"], default_for_string=False,
                                            default=False),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def write_statements(
    con: duckdb.DuckDBPyConnection, d_from: date, d_to: date, out_dir: Path, *,
    customer: str | None = None, buckets: tuple[int, ...] = DEFAULT_BUCKETS,
    policy: str = "oldest_first",
) -> list[Written]:
    """Write `<customer>.html`, `<customer>.pdf` and `index.html` into `out_dir`."""
    contexts = statement_contexts(con, d_from, d_to, customer=customer, buckets=buckets,
                                  policy=policy)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = environment()
    written = []
    for ctx in contexts:
        stem = safe_name(ctx["customer"])
        html = out_dir / f"{stem}.html"
        pdf = out_dir / f"{stem}.pdf"
        _atomic_text(html, env.get_template("soa_statement.html.j2").render(**ctx))
        write_pdf(pdf, ctx)
        written.append(Written(ctx["customer"], ctx["name"], ctx["language"], html, pdf,
                               {s["currency"]: s["closing_value"] for s in ctx["sections"]}))
    index = env.get_template("soa_index.html.j2").render(
        L=labels("en"), date_from=d_from.isoformat(), date_to=d_to.isoformat(),
        rows=[{"customer": w.customer, "name": w.name, "language": w.language,
               "html": w.html.name, "pdf": w.pdf.name,
               "closing": [(c, money(v, c)) for c, v in w.closing.items()]} for w in written],
    )
    _atomic_text(out_dir / "index.html", index)
    return written


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --- PDF ----------------------------------------------------------------------------------

CJK_FONT = "STSong-Light"
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]+")


def _markup(text: str) -> str:
    """Paragraph markup: XML-escaped, CJK runs in the CID font (Helvetica has no CJK)."""
    from xml.sax.saxutils import escape

    parts, pos = [], 0
    for m in _CJK.finditer(text):
        parts.append(escape(text[pos:m.start()]))
        parts.append(f'<font name="{CJK_FONT}">{escape(m.group())}</font>')
        pos = m.end()
    parts.append(escape(text[pos:]))
    return "".join(parts)


def write_pdf(path: Path, ctx: dict[str, Any]) -> None:
    """Draw one statement (the context of `statement_contexts`) as an A4 PDF."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    ss = getSampleStyleSheet()
    small = ss["BodyText"].clone("small", fontSize=8, leading=10)
    right = small.clone("small_right", alignment=2)  # 2: TA_RIGHT
    lab = ctx["L"]

    def p(text: str, style: Any = small) -> Any:
        return Paragraph(_markup(text), style)

    story: list[Any] = [
        p(lab["title"], ss["Title"]),
        p(f"{lab['customer']}: {ctx['name']}    {lab['customer_id']}: {ctx['customer']}",
          ss["BodyText"]),
        p(f"{lab['period']}: {ctx['date_from']} – {ctx['date_to']}", ss["BodyText"]),
    ]
    grid = TableStyle([
        ("FONTSIZE", (0, 0), (-1, -1), 8), ("ALIGN", (-3, 0), (-1, -1), "RIGHT"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
        ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ])
    heads = [lab[k] for k in ("date", "type", "document", "reference", "description", "debit",
                              "credit", "balance")]
    for s in ctx["sections"]:
        rows: list[list[Any]] = [[p(h, right if i >= 5 else small) for i, h in enumerate(heads)]]
        rows.append([ctx["date_from"], p(lab["opening"]), "", "", "", "", "", s["opening"]])
        rows += [[r["date"], p(r["kind"]), p(r["doc"]), p(r["reference"]), p(r["description"]),
                  r["debit"], r["credit"], r["balance"]] for r in s["lines"]]
        rows.append([ctx["date_to"], p(lab["closing"]), "", "", "", s["debits"], s["credits"],
                     s["closing"]])
        widths = [20 * mm, 22 * mm, 28 * mm, 32 * mm, 70 * mm, 28 * mm, 28 * mm, 30 * mm]
        # splitInRow: a row taller than a page (a long memo) goes on over the next page,
        # where reportlab would otherwise give up with a LayoutError
        story += [Spacer(1, 4 * mm), p(f"{lab['currency']}: {s['currency']}", ss["Heading3"]),
                  Table(rows, colWidths=widths, repeatRows=1, style=grid, splitInRow=1)]
        aging = [[p(label, right) for label, _ in s["aging"]] + [p(lab["total"], right)],
                 [v for _, v in s["aging"]] + [s["open_total"]]]
        story += [Spacer(1, 3 * mm), p(ctx["aging_title"], ss["Heading4"]),
                  Table(aging, colWidths=[36 * mm] * len(aging[0]), hAlign="LEFT",
                        style=TableStyle([("FONTSIZE", (0, 0), (-1, -1), 8),
                                          ("ALIGN", (0, 1), (-1, -1), "RIGHT"),
                                          ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black)]))]
    story += [Spacer(1, 6 * mm), p(lab["footer"], ss["BodyText"])]
    tmp = path.with_name(f".{path.name}.tmp")
    doc = SimpleDocTemplate(
        str(tmp), pagesize=landscape(A4), leftMargin=12 * mm, rightMargin=12 * mm,
        topMargin=12 * mm, bottomMargin=12 * mm, title=f"{lab['title']} {ctx['customer']}",
        invariant=1,  # no timestamp or random id: the same statement gives the same bytes
    )
    doc.build(story)
    os.replace(tmp, path)
