"""A sender's postal address as Japanese mail writes it: from the postal code and the
prefecture down to the building (〒100-0005 東京都千代田区丸の内1-2-3), the reverse of the
English order. The footer of every ``ja`` mail shows it (特定電子メール法)."""

from __future__ import annotations

import re

PREFECTURES = [
    "北海道",
    "青森県",
    "岩手県",
    "宮城県",
    "秋田県",
    "山形県",
    "福島県",
    "茨城県",
    "栃木県",
    "群馬県",
    "埼玉県",
    "千葉県",
    "東京都",
    "神奈川県",
    "新潟県",
    "富山県",
    "石川県",
    "福井県",
    "山梨県",
    "長野県",
    "岐阜県",
    "静岡県",
    "愛知県",
    "三重県",
    "滋賀県",
    "京都府",
    "大阪府",
    "兵庫県",
    "奈良県",
    "和歌山県",
    "鳥取県",
    "島根県",
    "岡山県",
    "広島県",
    "山口県",
    "徳島県",
    "香川県",
    "愛媛県",
    "高知県",
    "福岡県",
    "佐賀県",
    "長崎県",
    "熊本県",
    "大分県",
    "宮崎県",
    "鹿児島県",
    "沖縄県",
]
_POSTAL_CODE = re.compile(r"^〒?\s*\d{3}-?\d{4}\s*")
EXAMPLE = "〒100-0005 東京都千代田区丸の内1-2-3"


def check_japanese_address(value: str) -> str:
    """``value`` stripped; ValueError unless it reads in Japanese order (an optional postal
    code, then the prefecture)."""
    address = value.strip()
    rest = _POSTAL_CODE.sub("", address, count=1)
    if not any(rest.startswith(prefecture) for prefecture in PREFECTURES):
        raise ValueError(
            "a Japanese address starts with the postal code and the prefecture "
            f"(e.g. {EXAMPLE}), got {value!r}"
        )
    if any(ch in address for ch in "\r\n\x00"):
        raise ValueError("one line, no control characters")
    return address
