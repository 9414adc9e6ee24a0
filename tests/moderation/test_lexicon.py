"""The keyword floor: spellings, slang, hyperbole traps, time words, tags, and a broken lexicon file."""

from __future__ import annotations

from pathlib import Path

import pytest
from moderation.lexicon import DEFAULT_LEXICON, LexiconError, floor, load_lexicon
from moderation.screening import LEVELS, at_least, highest


@pytest.mark.parametrize(
    "text",
    ["死にたい", "しにたい", "シニタイ", "ｼﾆﾀｲ", "しにたーーい", "死にたいいいい", "タヒにたい", "氏にたい", "ﾀﾋにたい", "リスカしちゃった",
     "アムカした", "ODした", "オーバードーズしてる", "首吊りのやり方", "練炭買った", "睡眠薬ためてる", "自分なんか4ねばいい", "I want to kill myself"],
)
def test_spellings_and_slang_are_high_or_above(text: str) -> None:
    assert at_least(floor(text).level, "high"), text


@pytest.mark.parametrize(
    "text",
    ["テスト死んだ", "死ぬほど眠い", "推しが尊すぎて死ねる", "死ぬほど笑った", "殺す気か笑", "ゲームで死んだ", "キャンプのロープ買った",
     "風邪薬を飲んだ", "屋上の庭園きれい", "宿題多すぎてもう無理w", "眠くて限界", "前髪切りすぎた", "今日の夕飯なに", "今から塾",
     "ジュース全部飲んだ", "good mood food", "今まで遅刻したことない", "学校いきたくない", "助けてくれてありがとう"],
)
def test_hyperbole_and_innocent_uses_stay_low(text: str) -> None:
    assert floor(text).level == "low", text


@pytest.mark.parametrize(
    "text",
    ["今から飛び降りる", "薬を全部飲んだ", "今殴られてる", "今夜首吊ります", "今夜練炭を使う。もう死にたい", "今日飛び降りる",
     "いまから死ぬ", "I'm going to kill myself tonight"],
)
def test_acts_and_means_with_a_time_word_are_imminent(text: str) -> None:
    assert floor(text).level == "imminent", text


@pytest.mark.parametrize(
    "text",
    ["昔は死にたかったけど、今は大丈夫", "前はリスカしてたけど、もうしてない", "死にたくはないけど学校めんどい", "死にたいとかじゃないよ、眠いだけ",
     "推しが引退する、今までありがとう", "卒業式で先生に今までありがとうって言えた", "キャンプ用にロープ買った", "七輪買ったから焼肉する",
     "課題終わらなくて死ぬ", "演劇部で死ぬ役をやる", "I used to self harm but I've been clean for years",
     "送別会で今までありがとうって挨拶した", "ドラマの虐待シーンがつらかった", "ゾンビに殺される夢を見た", "もう死にたいって思わなくなった",
     "前髪自分で切ったら短すぎた", "先生に目つけられてる気がする", "ニュースで虐待の事件を見た", "学校でDVの講演があった",
     "自分が死ぬ夢を見て目が覚めた", "しゅくだいおおすぎてしぬ", "坂道のぼって脚が死ぬ", "死にたいくらい恥ずかしいことがあった",
     "スマブラで負けた弟が死ぬって叫んでる", "母の日のカードに今までありがとうって書いた", "元気なうちに遺影を撮っておくって祖母が写真館に行った",
     # 自殺行為 says "reckless" (in the written data: 60 calm messages, and every urgent one urgent for another clause).
     "冬山を半袖で登るのは自殺行為ですよ", "曽根崎心中の文楽を観た", "歌舞伎の心中物って切ない",
     "お化け屋敷の首吊り人形、リアルすぎて腰抜けた"],
)
def test_negation_past_and_innocent_contexts_stay_low(text: str) -> None:
    assert floor(text).level == "low", text


@pytest.mark.parametrize(
    "text",
    ["今までありがとう。もう会えないと思う", "身辺整理してる", "楽に死ねる方法ありますか", "ODって何錠からキマる？", "切りたくてたまらない",
     "thank you for everything, goodbye", "ドラマ見てて気づいた、うちも毎日殴られてる", "泊めてくれる人探してる",
     "また自分で切った", "帰り道ずっと誰かにつけられてる", "彼氏からDVされてる", "彼氏のDVについて相談したいです",
     "DVの相談窓口を教えてください", "駅で線路に入る人がいる、どうしよう",
     # Beside the innocent phrases above: a dream, a fear of death, a portrait and a farewell that mean the opposite.
     "死ぬ夢ばかり見る。もう死にたい", "最近、死ぬのが怖くなくなった", "いつか死ぬなら今でいい", "遺影に使う写真、自分で選んでおいた",
     "結婚して幸せになってね。今までありがとう", "自殺したい、こんなの自殺行為だってわかってるけど", "SNSで知り合った人と心中の約束した"],
)
def test_indirect_goodbyes_method_questions_and_urges_are_high_or_above(text: str) -> None:
    assert at_least(floor(text).level, "high"), text


@pytest.mark.parametrize("text", ["今ｵｰﾊﾞｰﾄﾞｰｽﾞした", "今日、死ぬ", "今夜決行します", "いま殴られてる", "さよなら、今までありがとう、今夜いなくなります"])
def test_half_width_kana_goodbyes_and_plain_words_with_a_time_are_imminent(text: str) -> None:
    assert floor(text).level == "imminent", text


def test_a_wish_stays_high_with_a_time_word() -> None:
    assert floor("今日も死にたい").level == "high"


@pytest.mark.parametrize("text", ["消えたい", "朝が来なければいいのに", "家がない", "三日間何も食べてない", "家に帰るのが怖い"])
def test_passive_wishes_and_crises_of_living_are_medium(text: str) -> None:
    assert floor(text).level == "medium", text


def test_spans_point_into_the_original_text() -> None:
    text = "なんかもうシニタイ…"
    tag = next(t for t in floor(text).tags if t.name == "suicide")
    assert tag.span is not None and text[tag.span[0] : tag.span[1]] == tag.text == "シニタイ"


def test_third_party_concern_is_tagged() -> None:
    screening = floor("友達が死にたいって言ってる")
    assert screening.level == "high"
    names = [t.name for t in screening.tags]
    assert "suicide" in names and "third_party" in names


@pytest.mark.parametrize(
    ("text", "tag"),
    [("親に殴られてる", "abuse_violence"), ("裸の写真送れって言われた", "sexual_exploitation"), ("またリスカした", "self_harm")],
)
def test_kinds_of_concern_are_tagged(text: str, tag: str) -> None:
    assert tag in [t.name for t in floor(text).tags]


def test_levels_compare_in_order() -> None:
    assert highest("low", "imminent", "medium") == "imminent"
    assert highest() == "low"
    assert [at_least(level, "high") for level in LEVELS] == [False, False, True, True]


def test_the_project_lexicon_loads() -> None:
    assert load_lexicon(DEFAULT_LEXICON).terms


def test_a_broken_value_is_reported_with_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "lexicon.yaml"
    text = DEFAULT_LEXICON.read_text(encoding="utf-8").replace("    level: high\n", "    level: severe\n", 1)
    broken.write_text(text, encoding="utf-8")
    line = text.splitlines().index("    level: severe") + 1
    with pytest.raises(LexiconError) as caught:
        load_lexicon(broken)
    assert caught.value.problems[0].startswith(f"{broken}:{line}: terms.")
    assert "level" in caught.value.problems[0]


def test_broken_yaml_is_reported_with_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "lexicon.yaml"
    broken.write_text("variants: {}\nterms:\n  - words: [死にたい\n    level: high\n", encoding="utf-8")
    with pytest.raises(LexiconError) as caught:
        load_lexicon(broken)
    assert caught.value.problems[0].startswith(f"{broken}:")
    assert "YAML syntax" in caught.value.problems[0]


def test_a_missing_key_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "lexicon.yaml"
    broken.write_text("variants: {}\nterms:\n  - words: [死にたい]\n    level: high\n    role: wish\n    tags: []\n", encoding="utf-8")
    with pytest.raises(LexiconError) as caught:
        load_lexicon(broken)
    assert any(p.startswith(f"{broken}:1: time_words") for p in caught.value.problems)
