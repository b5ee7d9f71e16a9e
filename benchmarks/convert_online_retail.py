"""Convert the UCI Online Retail transactions into ``personalization_evaluate``'s events CSV.

Every kept invoice line becomes one ``purchase`` event of its customer::

    visitor_id,product_id,timestamp,event,country,quantity,price
    17850,85123A,2010-12-01T08:26:00,purchase,GB,6,2.55

A line is kept when it is a real sale of a real product to a known customer:

- the invoice is not a cancellation (``InvoiceNo`` starting with ``C``);
- ``Quantity`` and ``UnitPrice`` are both positive;
- ``CustomerID`` is present;
- ``StockCode`` starts with five digits. Every product code of the catalogue does (``85123A``,
  ``22423``); postage, fees, discounts, manual adjustments, samples and gift vouchers do not
  (``POST``, ``D``, ``M``, ``DOT``, ``BANK CHARGES``, ``AMAZONFEE``, ``C2``, ``PADS``, ``CRUK``,
  ``S``, ``B``, ``DCGS…``, ``gift_…``).

Country names become ISO 3166-1 alpha-2 codes; ``Unspecified`` and ``European Community`` name
no country and are left empty, ``Channel Islands`` becomes ``JE``. Invoice dates are UK local
time, written without a zone (read as UTC). File order is kept.

    python benchmarks/convert_online_retail.py [OUT.csv] [--source online_retail.csv.gz]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "online_retail" / "online_retail.csv.gz"
DEFAULT_OUT = ROOT / "var" / "online_retail_events.csv"
HEADER = ["visitor_id", "product_id", "timestamp", "event", "country", "quantity", "price"]
PRODUCT_CODE = re.compile(r"\d{5}")

COUNTRY_CODES = {
    "Australia": "AU",
    "Austria": "AT",
    "Bahrain": "BH",
    "Belgium": "BE",
    "Brazil": "BR",
    "Canada": "CA",
    "Channel Islands": "JE",
    "Cyprus": "CY",
    "Czech Republic": "CZ",
    "Denmark": "DK",
    "EIRE": "IE",
    "European Community": "",
    "Finland": "FI",
    "France": "FR",
    "Germany": "DE",
    "Greece": "GR",
    "Hong Kong": "HK",
    "Iceland": "IS",
    "Israel": "IL",
    "Italy": "IT",
    "Japan": "JP",
    "Lebanon": "LB",
    "Lithuania": "LT",
    "Malta": "MT",
    "Netherlands": "NL",
    "Norway": "NO",
    "Poland": "PL",
    "Portugal": "PT",
    "RSA": "ZA",
    "Saudi Arabia": "SA",
    "Singapore": "SG",
    "Spain": "ES",
    "Sweden": "SE",
    "Switzerland": "CH",
    "USA": "US",
    "United Arab Emirates": "AE",
    "United Kingdom": "GB",
    "Unspecified": "",
}


def is_kept(row: dict[str, str]) -> bool:
    """Whether an invoice line is a sale of a catalogue product to a known customer."""
    return (
        not row["InvoiceNo"].startswith("C")
        and float(row["Quantity"]) > 0
        and float(row["UnitPrice"]) > 0
        and bool(row["CustomerID"].strip())
        and row["CustomerID"].strip().lower() != "nan"
        and PRODUCT_CODE.match(row["StockCode"]) is not None
    )


def convert(source: Path, out: Path) -> int:
    """Write the events CSV to ``out``; return the number of events written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with (
        gzip.open(source, "rt", newline="", encoding="utf-8") as src,
        out.open("w", newline="", encoding="utf-8") as dst,
    ):
        writer = csv.writer(dst)
        writer.writerow(HEADER)
        for row in csv.DictReader(src):
            if not is_kept(row):
                continue
            writer.writerow(
                [
                    str(int(float(row["CustomerID"]))),
                    row["StockCode"],
                    row["InvoiceDate"].replace(" ", "T"),
                    "purchase",
                    COUNTRY_CODES[row["Country"]],
                    row["Quantity"],
                    row["UnitPrice"],
                ]
            )
            written += 1
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--source", type=Path, default=SOURCE)
    args = parser.parse_args(argv)
    count = convert(args.source, args.out)
    print(f"{count} events written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
