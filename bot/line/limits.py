"""LINE Messaging API limits the bot must respect (from LINE's developer documentation)."""

MESSAGES_PER_REQUEST = 5
TEXT_MAX_UTF16 = 5000
QUICK_REPLY_MAX_ITEMS = 13
QUICK_REPLY_LABEL_MAX = 20
POSTBACK_DATA_MAX = 300
MULTICAST_MAX_RECIPIENTS = 500
# A reply token is good for about a minute; past this the sender uses push instead.
REPLY_TOKEN_FRESH_SECONDS = 50
FLEX_ALT_TEXT_MAX = 1500
CAROUSEL_MAX_BUBBLES = 12
# Rich menus: the text of the bar that opens one, its tap areas, and its image (JPEG or PNG).
RICH_MENU_CHAT_BAR_TEXT_MAX = 14
RICH_MENU_AREAS_MAX = 20
RICH_MENU_IMAGE_MAX_BYTES = 1024 * 1024
