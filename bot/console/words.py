"""Every state the console shows, in Japanese: no English level, status or role reaches a page.

One table per kind, because the same English value means different things (a room's `open` is
開催中, a flag's `open` is 未確認). Templates use the `ja` filter: `{{ c.risk_level|ja("level") }}`.
"""

from __future__ import annotations

from bot.storage.models import (
    Availability,
    ConsultationStatus,
    FlagState,
    ParticipantState,
    ReferralStatus,
    RiskLevel,
    RoomSessionStatus,
    StaffRole,
)

LEVELS = {RiskLevel.LOW: "低", RiskLevel.MEDIUM: "中", RiskLevel.HIGH: "高", RiskLevel.IMMINENT: "緊急"}
CONSULTATION_STATUSES = {
    ConsultationStatus.REQUESTED: "待機中",
    ConsultationStatus.ACTIVE: "対応中",
    ConsultationStatus.ENDED: "終了",
    ConsultationStatus.CANCELLED: "取り消し",
    ConsultationStatus.CLOSED_IDLE: "応答なしで終了",
    ConsultationStatus.UNSERVED: "受付時間外",
}
FLAG_STATES = {FlagState.OPEN: "未確認", FlagState.CONFIRMED: "確認済み", FlagState.RELABELLED: "段階を修正", FlagState.DISMISSED: "見送り"}
ROLES = {
    StaffRole.COUNSELOR: "相談員",
    StaffRole.SUPERVISOR: "スーパーバイザー",
    StaffRole.COORDINATOR: "コーディネーター",
    StaffRole.MODERATOR: "モデレーター",
    StaffRole.FACILITATOR: "ファシリテーター",
    StaffRole.ADMIN: "管理者",
}
AVAILABILITY = {Availability.AVAILABLE: "対応可", Availability.AWAY: "離席", Availability.OFFLINE: "オフライン"}
ROOM_STATUSES = {RoomSessionStatus.SCHEDULED: "予定", RoomSessionStatus.OPEN: "開催中", RoomSessionStatus.CLOSED: "終了", RoomSessionStatus.CANCELLED: "中止"}
PARTICIPANT_STATES = {ParticipantState.JOINED: "参加中", ParticipantState.LEFT: "退室", ParticipantState.REMOVED: "退室処置"}
REFERRAL_STATUSES = {
    ReferralStatus.PROPOSED: "本人の返事待ち",
    ReferralStatus.CONSENTED: "同意あり",
    ReferralStatus.DECLINED: "希望なし",
    ReferralStatus.CONTACTED: "連絡済み",
    ReferralStatus.CONNECTED: "つながった",
    ReferralStatus.CLOSED: "終了",
}
# The lexicon's tags (content/risk/lexicon.yaml) and the third-party marker of moderation/lexicon.py.
RISK_TAGS = {
    "suicide": "自殺・希死念慮",
    "self_harm": "自傷",
    "abuse_violence": "虐待・暴力",
    "sexual_exploitation": "性的搾取",
    "third_party": "第三者のこと",
}
# What decided a flag's level (moderation.screening.Screening.source, or a counselor's report).
FLAG_SOURCES = {
    "model": "モデル",
    "lexicon": "キーワード",
    "model+lexicon": "モデルとキーワード",
    "lexicon (model unavailable)": "キーワード（モデル停止中）",
    "counselor report": "相談員の報告",
    "conversation": "会話の流れ（モデル）",
}
# Messages other than text, as the chat shows them.
MESSAGE_KINDS = {"sticker": "スタンプ", "image": "画像", "video": "動画", "audio": "音声", "file": "ファイル", "location": "位置情報"}

KINDS: dict[str, dict[str, str]] = {
    "level": LEVELS,
    "consultation": CONSULTATION_STATUSES,
    "flag": FLAG_STATES,
    "role": ROLES,
    "availability": AVAILABILITY,
    "room": ROOM_STATUSES,
    "participant": PARTICIPANT_STATES,
    "referral": REFERRAL_STATUSES,
    "tag": RISK_TAGS,
    "source": FLAG_SOURCES,
    "kind": MESSAGE_KINDS,
}


def ja(value: str | None, kind: str) -> str:
    """The Japanese word for a value of one kind; a value not in the table (added later) shows as written."""
    if value is None:
        return ""
    return KINDS[kind].get(value, value)
