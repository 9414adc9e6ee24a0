"""The rich menus' designs, from content: the guidance menu's entrances, and a consultation's two taps.

Each tile sends the typed tap of the route it stands for (the same as the guidance menu's buttons),
so a rich menu adds no route of its own. `tsunagi line setup` puts the designs on LINE
(`bot.line.richmenu.sync_menus`); `consultation.queue.switch_rich_menu` shows each person theirs.
"""

from __future__ import annotations

from bot.consultation.taps import QueueTap
from bot.conversation.menu import LinkTap
from bot.conversation.postbacks import MenuTap
from bot.guidance.content import Content
from bot.line.richmenu import MenuDesign, Tap

# The guidance menu's links that get a tile, in this order (a language without one has no tile for it).
TILED_LINKS = ("finder", "ibasho", "emergency")


def rich_menu_designs(all_content: Content) -> list[MenuDesign]:
    """Per language: the main menu (相談する and the tiled links) and the consultation menu (順番を確認 / 相談を終える)."""
    designs = []
    for content in all_content.languages():
        words, links = content.messages, {link.id: link for link in content.menu.links}
        main = [Tap(words.rich_menu_consult_label, MenuTap().pack())]
        main += [Tap(links[i].label, LinkTap(id=i).pack()) for i in TILED_LINKS if i in links]
        consultation = [
            Tap(words.queue_check_label, QueueTap(do="status").pack()),
            # While waiting it cancels; in a chat the person is asked to tell the counselor (`requests.queue_action`).
            Tap(words.rich_menu_end_label, QueueTap(do="cancel").pack()),
        ]
        designs.append(MenuDesign("main", content.language, words.rich_menu_chat_bar, tuple(main)))
        designs.append(MenuDesign("consultation", content.language, words.rich_menu_chat_bar, tuple(consultation)))
    return designs
