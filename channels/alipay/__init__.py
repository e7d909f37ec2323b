"""Alipay open platform: the wire protocol's pure parts (amounts, RSA2 signatures)."""
