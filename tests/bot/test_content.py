from pathlib import Path
import shutil

import pytest

from bot.content import ContentError, load_content
from bot.line_limits import QUICK_REPLY_LABEL_MAX

REPO_CONTENT = Path(__file__).resolve().parents[2] / "content"


@pytest.fixture
def content_dir(tmp_path: Path) -> Path:
    target = tmp_path / "content"
    shutil.copytree(REPO_CONTENT, target)
    return target


def test_repository_content_is_valid_and_complete(content) -> None:
    labels = [c.label for c in content.menu.categories] + [link.label for link in content.menu.links]
    assert labels[:7] == ["18歳以下の方", "孤独・孤立の悩み", "死にたいほどつらい気持ち", "生活困窮", "女性の悩み", "性別の違和", "外国語相談 Foreign"]
    assert {"その他", "支援制度・窓口をさがす", "オンライン居場所"} <= set(labels)
    assert all(len(label) <= QUICK_REPLY_LABEL_MAX for label in labels)
    assert any(r.emergency and r.hours.always for r in content.resources), "a 24-hour line is needed for crises"


def _problems(directory: Path) -> list[str]:
    with pytest.raises(ContentError) as caught:
        load_content(directory)
    return caught.value.problems


def test_problem_names_file_and_line(content_dir: Path) -> None:
    menu = content_dir / "menu.yaml"
    lines = menu.read_text(encoding="utf-8").splitlines()
    number = next(i for i, line in enumerate(lines) if "label: 生活困窮" in line)
    lines[number] = "    label: " + "長" * 21
    menu.write_text("\n".join(lines), encoding="utf-8")
    [problem] = _problems(content_dir)
    assert problem.startswith(f"{menu}:{number + 1}: categories.3.label:")


def test_yaml_syntax_error_has_a_line(content_dir: Path) -> None:
    (content_dir / "messages.yaml").write_text("received_sticker: ok\nbroken: [unclosed\n", encoding="utf-8")
    [problem] = _problems(content_dir)
    assert problem.startswith(f"{content_dir / 'messages.yaml'}:") and "YAML syntax" in problem


def test_missing_file_missing_key_bad_phone_and_duplicates(content_dir: Path) -> None:
    (content_dir / "messages.yaml").unlink()
    resources = content_dir / "resources.yaml"
    text = resources.read_text(encoding="utf-8").replace("0120-061-338", "0120061338")
    resources.write_text(text, encoding="utf-8")
    problems = _problems(content_dir)
    assert any("messages.yaml:1: file is missing" in p for p in problems)
    assert any("resources.yaml" in p and "0120061338" in p for p in problems)


def test_duplicate_category_ids_are_reported(content_dir: Path) -> None:
    menu = content_dir / "menu.yaml"
    menu.write_text(menu.read_text(encoding="utf-8").replace("id: poverty", "id: loneliness"), encoding="utf-8")
    [problem] = _problems(content_dir)
    assert "duplicate id 'loneliness'" in problem
