"""The support finder: which lines it offers, when they are open, and the flow on LINE (and in English)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import Service
from sqlmodel import select

from bot.appkeys import SESSIONS
from bot.guidance.finder import contact_uri, lines_for, resource_bubble
from bot.storage.models import Consultation, LineUser

TOKYO = ZoneInfo("Asia/Tokyo")
WEEKDAY_10 = datetime(2026, 11, 25, 10, 0, tzinfo=TOKYO)  # a Wednesday
WEEKDAY_22 = datetime(2026, 11, 25, 22, 0, tzinfo=TOKYO)
SUNDAY = datetime(2026, 11, 29, 14, 0, tzinfo=TOKYO)
HOLIDAY = datetime(2026, 11, 23, 10, 0, tzinfo=TOKYO)  # 勤労感謝の日, a Monday
NEW_YEARS_EVE = datetime(2026, 12, 31, 10, 0, tzinfo=TOKYO)  # a Thursday


def test_every_worry_finds_a_line_in_every_language(content) -> None:
    for language in content.languages():
        for worry in language.finder.worries:
            found = lines_for(language, WEEKDAY_10, TOKYO, worries={worry.id})
            assert found, f"{language.language}: nothing for {worry.id}"
            if not worry.any_language:
                assert all(language.language in r.audience.languages for r in found)


@pytest.mark.parametrize("year", ["elementary_low", "elementary_mid", "elementary_high", "junior_high", "high_school"])
def test_each_school_year_finds_lines_for_children_of_that_age(content, year: str) -> None:
    ages = content.finder.school_year(year).ages
    found = lines_for(content, WEEKDAY_22, TOKYO, school_year=year, ages=ages)
    assert found
    for resource in found:
        assert year in resource.school_years
        assert resource.audience.max_age is None or resource.audience.max_age >= ages[0]
    assert any(r.always_open for r in found), "a child writing at night needs a line that is open"


@pytest.mark.parametrize(
    ("moment", "weekday_line_open"),
    [(WEEKDAY_10, True), (WEEKDAY_22, False), (SUNDAY, False), (HOLIDAY, False), (NEW_YEARS_EVE, False)],
)
def test_open_now_for_a_weekday_line_and_a_24_hour_line(content, moment: datetime, weekday_line_open: bool) -> None:
    weekday_line = content.resource("minna_no_jinken_110")  # weekdays 8:30–17:15, not on holidays or the new year
    always = content.resource("yorisoi_hotline")
    assert weekday_line.hours.is_open(moment, TOKYO) is weekday_line_open
    assert always.hours.is_open(moment, TOKYO)
    found = lines_for(content, moment, TOKYO, worries={"under18"})
    open_flags = [r.is_open(moment, TOKYO) for r in found]
    assert open_flags == sorted(open_flags, reverse=True), "open lines come first"


def test_at_night_24_hour_lines_come_first(content) -> None:
    found = lines_for(content, WEEKDAY_22, TOKYO, worries={"no_one_to_talk"})
    first_not_always = next(i for i, r in enumerate(found) if not r.always_open)
    assert first_not_always > 0 and all(not r.always_open for r in found[first_not_always:] if not r.is_open(WEEKDAY_22, TOKYO))


def test_tap_to_call_uris() -> None:
    assert contact_uri("phone", "0120-061-338") == "tel:0120061338"
    assert contact_uri("phone", "#8891") == "tel:%238891"
    assert contact_uri("web", "https://example.go.jp/") == "https://example.go.jp/"


async def at(service: Service, user: str, data: str, moment: datetime) -> None:
    event = service.line.event("postback", user, postback={"data": data})
    event["timestamp"] = int(moment.timestamp() * 1000)
    assert await service.line.send_events([event]) == 200


def bubbles(message: dict) -> list[dict]:
    contents = message["contents"]
    return contents["contents"] if contents["type"] == "carousel" else [contents]


def bubble_texts(bubble: dict) -> list[str]:
    return [c["text"] for c in bubble["body"]["contents"] if c["type"] == "text"]


def quick_labels(message: dict) -> list[str]:
    return [i["action"]["label"] for i in message["quickReply"]["items"]]


async def test_finder_flow_worry_to_carousel(service: Service, content) -> None:
    line = service.line
    user = line.add_user().user_id
    await line.follow(user)
    await line.send_postback(user, "a=link&id=finder")
    region = (await line.wait_for_messages(user, 2))[1]["message"]
    assert region["text"] == content.finder.region_prompt, "asked once where they live, before the worries"
    assert quick_labels(region) == [r.label for r in content.finder.regions] + [content.finder.prefecture_skip]
    await line.send_postback(user, "a=pref&id=")
    prompt, worries = [m["message"] for m in (await line.wait_for_messages(user, 4))[2:]]
    assert prompt["text"] == content.finder.prompt
    buttons = [c["action"]["label"] for c in bubbles(worries)[0]["body"]["contents"]]
    assert buttons == [w.label for w in content.finder.worries]
    await line.send_postback(user, "a=worry&id=living_costs")
    intro, carousel = [m["message"] for m in (await line.wait_for_messages(user, 6))[4:]]
    assert carousel["type"] == "flex" and 1 <= len(bubbles(carousel)) <= 5
    assert "生活や仕事の費用" in intro["text"]
    for bubble in bubbles(carousel):
        texts = bubble_texts(bubble)
        resource = next(r for r in content.resources if r.name == texts[0])
        assert "living_costs" in resource.worries
        if resource.hours is None:
            assert texts[2:] == [content.finder.anytime], "a page is not a line: no open, closed or 24 hours"
        elif not resource.hours_vary:
            assert texts[2] in (content.finder.open_now, content.finder.closed_now)
        uris = [b["action"]["uri"] for b in bubble["footer"]["contents"]]
        assert uris == [contact_uri(c.kind, c.value) for c in resource.contacts_for(None)]


async def test_children_are_asked_their_school_year_and_it_is_kept(service: Service, content) -> None:
    line = service.line
    user = line.add_user().user_id
    await line.follow(user)
    await line.send_postback(user, "a=worry&id=under18")
    question = (await line.wait_for_messages(user, 2))[1]["message"]
    assert question["text"] == content.finder.school_year_prompt
    assert [i["action"]["label"] for i in question["quickReply"]["items"]] == ["小学1・2年", "小学3・4年", "小学5・6年", "中学生", "15〜18歳"]
    await at(service, user, "a=year&id=junior_high", WEEKDAY_22)
    carousel = (await line.wait_for_messages(user, 4))[3]["message"]
    names = [bubble_texts(b)[0] for b in bubbles(carousel)]
    for name in names:
        assert "junior_high" in next(r for r in content.resources if r.name == name).school_years
    first = bubble_texts(bubbles(carousel)[0])
    assert first[2] == content.finder.open_now, "at 22:00 an open (24-hour) line comes first"
    async with service.app[SESSIONS]() as session:
        assert (await session.get(LineUser, user)).school_year == "junior_high"


async def test_tampered_finder_choices_restart_the_finder(service: Service, content) -> None:
    line = service.line
    user = line.add_user().user_id
    await line.follow(user)
    await line.send_postback(user, "a=worry&id=nonexistent")
    await line.send_postback(user, "a=year&id=university")
    messages = await line.wait_for_messages(user, 5)
    assert [m["message"].get("text") for m in messages[1:]][::2] == [content.finder.prompt] * 2


async def test_english_route(service: Service, content) -> None:
    line = service.line
    english = content.in_language("en")
    user = line.add_user().user_id
    await line.follow(user)
    await line.send_postback(user, "a=lang&id=en")
    menu = (await line.wait_for_messages(user, 2))[1]["message"]
    assert english.menu.prompt in menu["text"]
    labels = [i["action"]["label"] for i in menu["quickReply"]["items"]]
    assert labels == [c.label for c in english.menu.categories] + [link.label for link in english.menu.links] + ["日本語"]
    await line.send_text(user, "menu")
    assert (await line.wait_for_messages(user, 3))[2]["message"]["text"] == english.menu.prompt
    await line.send_postback(user, "a=link&id=finder")
    assert (await line.wait_for_messages(user, 4))[3]["message"]["text"] == english.finder.region_prompt
    await line.send_postback(user, "a=pref&id=")
    assert (await line.wait_for_messages(user, 6))[4]["message"]["text"] == english.finder.prompt
    await line.send_postback(user, "a=worry&id=foreign_language")
    carousel = (await line.wait_for_messages(user, 8))[7]["message"]
    for bubble in bubbles(carousel):
        assert bubble_texts(bubble)[2] in (english.finder.open_now, english.finder.closed_now, english.finder.anytime)
    # Out of hours in English: the closed notice, and only lines that answer in English.
    await at(service, user, "a=category&id=foreign", SUNDAY)
    closed = (await line.wait_for_messages(user, 9))[8]["message"]["text"]
    assert closed.startswith('Sorry, "Talk to a counselor" is closed right now (Weekdays 10:00–17:00)')
    async with service.app[SESSIONS]() as session:
        [consultation] = list(await session.exec(select(Consultation)))
    assert consultation.category == "foreign" and not consultation.arrived_in_hours
    await line.send_postback(user, "a=lang&id=ja")
    back = (await line.wait_for_messages(user, 10))[9]["message"]
    assert "English" in [i["action"]["label"] for i in back["quickReply"]["items"]]
    await line.send_postback(user, "a=lang&id=xx")
    refused = (await line.wait_for_messages(user, 11))[10]["message"]
    assert refused["text"] == content.messages.unknown_choice


def test_the_foreign_language_worry_offers_lines_in_other_languages_to_japanese_readers(content) -> None:
    found = lines_for(content, WEEKDAY_10, TOKYO, worries={"foreign_language"})
    assert any("ja" not in r.audience.languages for r in found)
    assert not any("ja" not in r.audience.languages for r in lines_for(content, WEEKDAY_10, TOKYO, worries={"illness"}))


VARYING = ["kokoro_no_kenkou_soudan_toitsu_dial", "dv_soudan_navi", "onestop_shien_center_8891", "keisatsu_soudan_9110", "childline_chat"]
MOMENTS = [WEEKDAY_10, WEEKDAY_22, SUNDAY, HOLIDAY, NEW_YEARS_EVE, datetime(2026, 11, 25, 3, 0, tzinfo=TOKYO)]


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_line_whose_hours_vary_is_never_shown_as_open_now(content, moment: datetime) -> None:
    for resource_id in VARYING:
        resource = content.resource(resource_id)
        assert resource.hours_vary and not resource.is_open(moment, TOKYO)
        bubble = bubble_texts(resource_bubble(content, resource, moment, TOKYO))
        assert content.finder.open_now not in bubble and content.finder.closed_now not in bubble
        assert content.finder.hours.format(hours=resource.hours.varies) in bubble, "offered with the page's own sentence"
    worries = {w.id for w in content.finder.worries}
    assert not any(r.hours_vary for r in lines_for(content, moment, TOKYO, open_only=True))
    found = lines_for(content, moment, TOKYO, worries=worries)
    assert {"dv_soudan_navi", "onestop_shien_center_8891"} <= {r.id for r in found}
    first_varying = next(i for i, r in enumerate(found) if r.hours_vary)
    assert not any(r.is_open(moment, TOKYO) for r in found[first_varying:]), "never above a line known to be open"


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_web_page_is_never_among_the_lines_open_now(content, moment: datetime) -> None:
    pages = [r for r in content.all_resources() if not r.is_line]
    assert pages and all(r.hours is None and not r.is_open(moment, TOKYO) for r in pages)
    assert not any(not r.is_line for r in lines_for(content, moment, TOKYO, open_only=True))
    page = content.resource("seikatsu_hogo")
    texts = bubble_texts(resource_bubble(content, page, moment, TOKYO))
    assert texts[2:] == [content.finder.anytime] and not any("24時間" in t for t in texts)


async def test_the_lines_offered_out_of_hours_are_never_web_pages(service: Service, content) -> None:
    line = service.line
    user = line.add_user().user_id
    await line.follow(user)
    await line.wait_for_messages(user, 1)
    await at(service, user, "a=category&id=poverty", datetime(2026, 11, 22, 3, 0, tzinfo=TOKYO))
    text = (await line.wait_for_messages(user, 2))[1]["message"]["text"]
    offered = [line_ for line_ in text.splitlines() if line_.startswith("・")]
    assert offered, text
    pages = {c.value for r in content.all_resources() if not r.is_line for c in r.contacts}
    assert not any(page in text for page in pages)
    named = [next(r for r in content.all_resources() if line_.startswith(f"・{r.name} ")) for line_ in offered]
    assert all(r.is_line and r.is_open(datetime(2026, 11, 22, 3, 0, tzinfo=TOKYO), TOKYO) for r in named)
    assert all(r.always_open for r, line_ in zip(named, offered, strict=True) if "（24時間）" in line_)


def test_a_person_in_yamagata_sees_the_prefecture_line_first(content) -> None:
    afternoon = datetime(2026, 11, 25, 14, 0, tzinfo=TOKYO)
    found = lines_for(content, afternoon, TOKYO, worries={"suicide"}, prefecture="yamagata")
    assert found[0].id == "yamagata_inochi_no_denwa"
    assert not any(r.id.startswith("tokyo_") for r in found), "another prefecture's lines are not offered"
    nowhere = lines_for(content, afternoon, TOKYO, worries={"suicide"})
    assert "yamagata_inochi_no_denwa" not in {r.id for r in nowhere}
    # At night the local line is closed: a line open now comes before it.
    night = lines_for(content, datetime(2026, 11, 25, 23, 30, tzinfo=TOKYO), TOKYO, worries={"suicide"}, prefecture="yamagata")
    assert night[0].is_open(datetime(2026, 11, 25, 23, 30, tzinfo=TOKYO), TOKYO)


async def test_the_prefecture_is_asked_once_kept_and_its_line_comes_first(service: Service, content) -> None:
    line = service.line
    user = line.add_user().user_id
    await line.follow(user)
    await line.wait_for_messages(user, 1)
    afternoon = datetime(2026, 11, 25, 14, 0, tzinfo=TOKYO)
    await at(service, user, "a=link&id=finder", afternoon)
    await at(service, user, "a=region&id=hokkaido_tohoku", afternoon)
    prefectures = (await line.wait_for_messages(user, 3))[2]["message"]
    assert prefectures["text"] == content.finder.prefecture_prompt
    assert "山形県" in quick_labels(prefectures) and quick_labels(prefectures)[-1] == content.finder.prefecture_skip
    await at(service, user, "a=pref&id=yamagata", afternoon)
    await line.wait_for_messages(user, 5)
    async with service.app[SESSIONS]() as session:
        person = await session.get(LineUser, user)
        assert (person.prefecture, person.prefecture_asked) == ("yamagata", True)
    await at(service, user, "a=worry&id=suicide", afternoon)
    carousel = (await line.wait_for_messages(user, 7))[6]["message"]
    assert bubble_texts(bubbles(carousel)[0])[0] == "山形いのちの電話"
    assert content.finder.change_prefecture in quick_labels(carousel)
    # Asked once: the finder goes straight to the worries next time.
    await at(service, user, "a=link&id=finder", afternoon)
    assert (await line.wait_for_messages(user, 9))[7]["message"]["text"] == content.finder.prompt


async def test_a_caller_in_iwate_is_given_the_number_for_iwate(service: Service, content) -> None:
    line = service.line
    user = line.add_user().user_id
    await line.follow(user)
    await line.wait_for_messages(user, 1)
    await line.send_postback(user, "a=pref&id=iwate")
    await line.send_postback(user, "a=worry&id=food_housing")
    carousel = (await line.wait_for_messages(user, 5))[4]["message"]
    yorisoi = next(b for b in bubbles(carousel) if bubble_texts(b)[0] == "よりそいホットライン")
    uris = [b["action"]["uri"] for b in yorisoi["footer"]["contents"]]
    assert uris == ["tel:0120279226", "tel:0120279338"]
    assert contact_uri("phone", "0120-279-226") not in [
        c for r in lines_for(content, WEEKDAY_10, TOKYO, worries={"food_housing"}) for c in [contact_uri(x.kind, x.value) for x in r.contacts_for(None)]
    ]


def test_the_prefecture_taps_read_back_including_a_skip() -> None:
    from bot.conversation.postbacks import Postback
    from bot.guidance.finder import PrefectureTap, RegionTap

    assert Postback.parse("a=pref&id=") == PrefectureTap(id="")
    assert Postback.parse(RegionTap(id="kanto").pack()) == RegionTap(id="kanto")
    assert Postback.parse("a=pref&id=yamagata&x=1") is None
