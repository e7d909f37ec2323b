"""WeChat Pay API v3's bill answers, as both sides read them (pydantic only, like `wire`).

    GET /v3/bill/tradebill?bill_date=yyyy-MM-dd&bill_type=ALL[&tar_type=GZIP]    -> BillUrl
    GET /v3/bill/fundflowbill?bill_date=yyyy-MM-dd&account_type=BASIC[&tar_type] -> BillUrl
    GET {download_url}   (signed like any request; the answer is the file itself, unsigned:
                          its integrity is `hash_value`, SHA1 of the bytes as downloaded)

Errors: 400 STATEMENT_CREATING (the day's bill is being made: ask later), 400
NO_STATEMENT_EXIST (no bill: the day had no transaction), 400 PARAM_ERROR.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

STATEMENT_CREATING = "STATEMENT_CREATING"
NO_STATEMENT_EXIST = "NO_STATEMENT_EXIST"
BillType = Literal["ALL", "SUCCESS", "REFUND"]


class BillUrl(BaseModel):
    model_config = ConfigDict(frozen=True)

    hash_type: Literal["SHA1"] = "SHA1"
    hash_value: str
    download_url: str
