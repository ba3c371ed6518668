"""benchmarks/real_data.py: the CDNOW loader, on a sample embedded here (no network, no Lifetimes)."""

from __future__ import annotations

from datetime import UTC, datetime

from benchmarks.real_data import load_cdnow, read_cdnow

from relance.ml.features import customer_features, purchase_labels

SAMPLE = """ customer_id  date number_of_cds  dollar_value
 00001 19970101  1   11.77
 00002 19970112  1   12.00
 00002 19970112  5   77.00
 00003 19970102  2   20.76
 00003 19970330  2   20.76
 00003 19970402  2   19.54
 00003 19971115  5   57.45
 00003 19971125  4   20.96
 00003 19980528  1   16.99
 00004 19970101  2   29.33
 00004 19970118  2   29.73
 00004 19970802  1   14.96
 00004 19971212  2   26.48
 00005 19970101  2   29.33
 00005 19970114  1   13.97
 00005 19970204  3   38.90
 00005 19970411  3   45.55
 00005 19970531  3   38.71
 00005 19970616  2   26.14
 00005 19970722  2   28.14
"""


def test_cdnow_loader_merges_same_day_lines_and_feeds_the_features(wh):
    frame = read_cdnow(SAMPLE.splitlines())
    assert len(frame) == 19  # customer 00002's two lines of 1997-01-12 are one order
    two = frame[frame["customer_id"] == "00002"].iloc[0]
    assert (two["cds"], round(two["dollars"], 2)) == (6, 89.0)
    assert load_cdnow(wh, frame) == {"customers": 5, "orders": 19}

    features = customer_features(wh, datetime(1998, 1, 1, tzinfo=UTC), snapshot=True)
    assert list(features.index) == ["00001", "00002", "00003", "00004", "00005"]
    assert features["frequency"].tolist() == [1, 1, 5, 4, 7]
    assert round(features.loc["00002", "monetary"], 2) == 89.0
    assert round(features.loc["00004", "recency_days"], 1) == 19.5  # 1997-12-12 noon → 1998-01-01
    assert purchase_labels(wh, datetime(1998, 1, 1, tzinfo=UTC), datetime(1998, 7, 1, tzinfo=UTC)) == {"00003"}
