"""Contact details are found however they are written, and ordinary words are not mistaken for them."""

import pytest
from moderation.contact import describe, find_contact_details


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("よかったら電話して ０９０ー１２３４ー５６７８", "電話番号"),
        ("090 1234 5678 までどうぞ", "電話番号"),
        ("+81 90 1234 5678", "電話番号"),
        ("mail: sora.days@example.com", "メールアドレス"),
        ("sora あっと example どっと com", "メールアドレス"),
        ("ここ見て https://example.com/abc", "URL"),
        ("example.jp で検索", "URL"),
        ("LINEのIDおしえて", "SNSやLINEのID"),
        ("インスタ垢 @sora_days", "SNSやLINEのID"),
        ("ID: kaze_123 です", "SNSやLINEのID"),
        ("あとでDMして！", "個別に連絡をとる誘い"),
        ("連絡先交換しよ", "個別に連絡をとる誘い"),
        ("QRコード送るね", "QRコード"),
        ("渋谷区神南1丁目に住んでる", "住所"),
        ("桜ヶ丘中学校の2年です", "学校名と学年"),
    ],
)
def test_contact_details_are_found(text: str, kind: str) -> None:
    assert kind in describe(find_contact_details(text))


@pytest.mark.parametrize(
    "text",
    ["テスト死んだ", "今日は3時間しか寝てない", "1234円のランチ", "電話番号は言えないけど", "私は中2です", "地元の小学校の3年生の時", "admin画面", "また来週ね"],
)
def test_ordinary_words_are_relayed(text: str) -> None:
    assert find_contact_details(text) == []


def test_findings_are_in_order_and_described_once_per_kind() -> None:
    findings = find_contact_details("090-1111-2222 か 080-3333-4444 に https://a.example.com")
    assert [f.kind for f in findings] == ["phone", "phone", "url"]
    assert describe(findings) == "電話番号、URL"
