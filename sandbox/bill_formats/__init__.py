"""Each channel's bill file, rendered from `sandbox.bill_entries.BillEntry` lines.

    alipay.py      a zip of two GBK CSVs: 业务明细 (one row a trade or refund) and 业务汇总
    wechatpay.py   WeChat Pay v3's trade bill: a UTF-8 CSV, every field behind a backtick
    card.py        the card gateway's itemized balance-transaction report (minor units)

Our side's parsers (`channels/*/bills.py`) read these as they would read the real
channel's files; nothing here is imported by them.
"""
