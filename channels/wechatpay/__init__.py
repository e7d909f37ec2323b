"""WeChat Pay API v3: the wire protocol's pure parts (signatures, resource encryption)."""
