"""The training, validation and held-out examples.

Two sources, both written for tsunagi:
  * `content/risk/written/<level>.txt`: messages written one by one as people really type them on LINE
    (indirect goodbyes, past tense and negation, method questions, long messages where the risk is one
    clause, hyperbole and innocent uses of risk words, English, hiragana-only, dialect, slang, emoji).
    They are split by a hash of their text into training, validation (for choosing thresholds; the
    lexicon's innocent phrases are found on training) and held-out (the final in-repo figure: never
    tuned on). A message that is nearly the same as one in training goes to training, and a held-out one
    nearly the same as one in validation goes to validation, so each evaluation split holds only wording
    unseen before it.
  * the core sentences below, dressed in openings, endings and spellings (katakana, stretched vowels,
    typos): they teach spelling variants, but a model fed mostly on them memorises templates, so there
    are few of them and they go to training only.

Conversations (a person's messages in order, labelled as a counselor reading them all would rate the
person now) are written the same way, one by one, in `content/risk/conversations/written/*.jsonl`. They
are split by a hash of the whole conversation, with the same near-duplicate discipline, into
`conversations/train.jsonl`, `validation.jsonl` and `heldout.jsonl`; training also gets windows composed
from its own single messages (a few calm lines, then any message, at that message's level), as a
minority. `conversations/blind*.jsonl` (and `blind*.jsonl` of single messages) are written apart, by writers who
saw none of the data, and only ever evaluated on.

Run `python -m moderation.dataset` to rewrite `content/risk/train.jsonl`, `validation.jsonl` and
`heldout.jsonl`, and the conversation splits.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Callable
from operator import itemgetter
from pathlib import Path

RISK_DIR = Path(__file__).resolve().parents[1] / "content" / "risk"
WRITTEN_DIR = RISK_DIR / "written"
CONVERSATIONS_DIR = RISK_DIR / "conversations"
SPLITS = ("train", "validation", "heldout")
SEED = 20240607
# Shares of the written messages kept out of training: one split to tune on, one to report.
VALIDATION_SHARE = 0.2
HELDOUT_SHARE = 0.2
# Composed examples per level: a minority of training, so the written messages dominate what is learned.
TARGETS = {"low": 300, "medium": 150, "high": 150, "imminent": 110}
TAG_CODES = {"s": "suicide", "h": "self_harm", "a": "abuse_violence", "x": "sexual_exploitation", "t": "third_party"}
NEAR_DUPLICATE = 0.8
# Training examples made of two training messages run together, as a share of training.
COMPOUND_SHARE = 0.15
# Windows composed from training's single messages, as a share of the written training conversations.
COMPOSED_WINDOW_SHARE = 0.4

# One core per line: `sentence | tag codes` (s suicide, h self_harm, a abuse_violence,
# x sexual_exploitation, t third_party); lines starting with "en:" are English.
CORES = {
    "imminent": """
今からマンションの10階から飛び降りる | s
ODした、さっき。吐き気がする | s
今夜みんなが寝たら首を吊る | s
もう薬飲んじゃった、体が動かない | s
今駅にいる、電車来たら飛び込む | s
今日の夜、海に入って終わりにする | s
いま屋上。さよなら | s
ロープかけた。最後に誰かに言いたくて | s
今からリスカする、深く切る | h
さっき切ったら血が止まらなくて怖い | h
今お父さんが暴れてて、ドアを叩いてる、殺される | a
彼氏に今首絞められて逃げてきた、追いかけてくる | a
今家の外で待ち伏せされてる、怖い | a
今からSNSの人と会う、ホテル行くって言われてる | x
今夜泊めてくれるっていう知らないおじさんの車に乗った | x
弟が今から死ぬって部屋にこもってる | s t
en: I just swallowed a whole bottle of pills | s
en: tonight is the night, I have the rope ready | s
今から飛び降りる | s
いまから飛び降ります。さよなら | s
薬を全部飲んだ | s
さっき睡眠薬ぜんぶ飲んだ | s
市販薬100錠飲んだ、頭がぼーっとする | s
今OD中。ふわふわしてる | s
ロープ用意した。今夜やる | s
今夜首吊ります | s
今日で終わりにする。遺書も書いた | s
屋上の柵の外にいる | s
駅のホームにいる。次の電車に飛び込む | s
車の中で練炭焚いてる | s
練炭に火つけた、もう眠い | s
今日死ぬって決めた | s
これから死にに行きます | s
橋の上にいる。今から飛び込む | s
今までありがとう。今から死にます | s
遺書書いた。今夜決行する | s
今夜死のうと思う、薬も用意してある | s
今から首吊る | s
今手首切ってて血が止まらない | h
深く切りすぎた、血が止まらない | h
今殴られてる、助けて | a
今父親が包丁持って暴れてる | a
お母さんに今殴られてて、トイレに隠れてる | a
今すぐ助けて、彼氏に首を絞められた | a
部屋の外で父が怒鳴ってて殺されそう | a
今知らない男の人の家にいて帰してもらえない | x
ホテルに連れてこられた、今すぐ帰りたい、怖い | x
薬をまとめて飲みました。もうすぐ楽になれる | s
今から線路に入る | s
今日、学校の屋上から飛び降りる | s
ビルの屋上にいる。風が強い。もう行くね | s
眠剤全部出した。今から飲む | s
いまからとびおりる | s
くすりぜんぶのんだ | s
きょうしぬ | s
今からタヒる | s
きょうでおわり、4にます | s
今ODしてる💊 | s
フェンスを越えた。下を見てる | s
今夜、七輪と練炭で終わらせる | s
睡眠薬を全部飲んだからもう起きないと思う | s
今から死ぬから最後に誰かと話したかった | s
明日の朝には私はもういない。今夜やる | s
友達が今から飛び降りるってLINEしてきた | s t
クラスの子が薬全部飲んだって言ってる | s t
妹が今お父さんに殴られてる | a t
彼女が今夜死ぬって言ってて連絡がつかない | s t
en: I'm on the roof and I'm going to jump | s
en: I took all my pills just now | s
en: I'm going to kill myself tonight | s
en: he is hitting me right now please help | a
en: my friend says she took all her pills | s t
""",
    "high": """
最近ずっと死ぬことばかり考えてる | s
死に方をネットで調べてしまう | s
どの駅なら確実か調べてる | s
練炭と七輪をネットで買った | s
自殺したいけど勇気が出ない | s
生きてるのをやめたいってずっと思う | s
死んで楽になりたい | s
私が死んでも誰も困らないから死にたい | s
ODしてからずっと気持ち悪い | s
睡眠薬を何回かに分けて集めてる | s
腕の傷が増えて夏でも長袖 | h
切らないと眠れない | h
血を見ると安心する | h
壁に頭を打ちつけてしまう | h
兄に毎日殴られてるけど親は見て見ぬふり | a
継父にたばこの火を押しつけられた | a
母親の彼氏に暴力をふるわれてる | a
先輩に裸の動画を撮られた | x
SNSの人に写真を送ったら拡散するって脅された | x
お金がなくて体を売るしかない | x
知らない大人からお小遣いあげるから会おうって言われてる | x
母が死にたいって毎日言ってて怖い | s t
クラスの子の腕に切り傷がたくさんある、自傷してるみたい | h t
en: I keep thinking about how to end my life | s
en: I cut again, I can't stop | h
死にたい | s
毎日死にたいって思ってる | s
しにたい | s
本気で死にたい | s
タヒにたい | s
氏にたい | s
死にたすぎてやばい | s
楽に死ねる方法を調べてる | s
自殺の方法ばかり検索してしまう | s
首吊りのやり方を調べてた | s
練炭買った | s
睡眠薬をためてる | s
遺書を書き始めた | s
死ぬ準備をしてる | s
自分なんか死んだほうがいい | s
生きるのをやめたい | s
人生終わりにしたい | s
じさつしたい | s
しにたいしにたいしにたい | s
死ぬしかないと思ってる | s
いつ死のうか考えてる | s
飛び降りたら楽になれるかな | s
市販薬をたくさん買ってある、いざという時のために | s
リスカがやめられない | h
またリスカしちゃった | h
アムカした、隠すの大変 | h
腕を切ると落ち着く | h
毎晩自傷してる | h
昨日ODした | s
カミソリで手首を切ってる | h
根性焼きしちゃった | h
傷が増えていく一方 | h
りすかやめられない | h
切りたい衝動がおさまらない | h
父に毎日殴られてる | a
母親に叩かれて痣ができた | a
親にご飯をもらえない | a
義父に蹴られる | a
彼氏に首を絞められたことがある | a
お前なんか死ねって毎日言われる | a
殴られて家から追い出された | a
お酒を飲むと父が暴力をふるう | a
裸の写真送れって言われてる | x
写真をばらまくって脅されてる | x
パパ活やってる、怖い人もいる | x
ネットの人に会おうって言われてて断れない | x
塾の先生に触られた | x
神待ちしてる | x
家出して泊めてくれる人探してる | x
義理の兄に無理やり触られる | x
DMで下着の写真ほしいって言われた | x
友達が死にたいって言ってる | s t
親友がリスカしてるみたい | h t
後輩が親に殴られてるらしい | a t
友だちがパパ活してるみたいで心配 | x t
en: I want to die | s
en: I've been searching for ways to kill myself | s
en: I cut myself again last night | h
en: my dad beats me | a
en: someone online keeps asking me for nudes | x
en: my friend said she wants to kill herself | s t
""",
    "medium": """
もう何もしたくない、消えてしまいたい | s
寝たらそのまま起きなきゃいいのに | s
自分がいなければみんな幸せなのに | s
生きてるのがしんどい、でも死ぬ勇気もない | s
毎晩泣いてる、もう限界かも |
学校に行くと息が苦しくなる |
誰にも相談できなくてつらい |
いじめられてて学校に行けない |
親が毎日喧嘩してて家にいたくない |
お母さんがお酒を飲むと物を投げるから怖い |
バイトクビになって明日からのご飯がない |
ネットカフェで寝泊まりしてる |
実家を追い出されて友達の家を転々としてる |
何のために生きてるのかわからない |
もう疲れた、全部やめたい |
ずっとひとりで、誰も私のこと見てない |
en: everything feels pointless |
en: I haven't eaten in two days |
消えたい | s
いなくなりたい | s
朝が来なければいいのに | s
このまま目が覚めなければいい | s
生まれてこなければよかった | s
眠ったまま起きたくない | s
きえたい | s
消えたすぎる | s
私なんかいないほうがいい | s
楽になりたい | s
生きてる意味がわからない |
自分には価値がない |
何もかも嫌になった |
未来に希望がない |
もう頑張れない |
誰も助けてくれない |
居場所がない |
毎日つらくて涙が止まらない |
学校にも家にも居場所がない |
生きるのがしんどい |
寝れない日が続いてもう限界 |
全部どうでもよくなった |
誰にも必要とされてない |
もうむり、つかれた |
もう全部無理。つらい |
学校に行けなくなった、生きてるのがつらい |
毎日が苦しい |
迷惑しかかけてない気がする |
三日間何も食べてない |
家がなくてネカフェにいる |
所持金が100円しかない |
電気止められた |
家賃が払えなくて追い出されそう |
野宿してる |
家に帰るのが怖い |
親が怖くて家にいたくない |
父が酒を飲むと怒鳴るから怖い |
家出したい |
毎日親に怒鳴られる |
ごはん食べるお金がない |
友達が消えたいってよく言う | s t
彼氏がもう生きてる意味ないって言ってる | t
en: I want to disappear | s
en: I feel hopeless |
en: I can't go on like this |
en: I have nowhere to live |
""",
    "low": """
明日の部活の朝練だるすぎる
友達と映画見てきた、めっちゃよかった
新しいスニーカー買った
昨日の夜ずっとゲームしてた
英語の小テスト満点だった
好きな人と目が合った気がする
お母さんの作るハンバーグが好き
修学旅行の班決めで揉めた
塾の帰りにコンビニ寄った
推しの新曲が最高
テスト勉強しなきゃいけないのにスマホ見ちゃう
犬の散歩行ってくる
体育祭のリレーの選手になった
部活の大会で負けて悔しい
友達に誕生日を祝ってもらった
将来何になりたいかわからない
進学するか就職するか迷ってる
クラス替えが不安
先生に怒られたけど自分が悪かった
LINEの返信が遅いって言われた
今日は雨で気分が上がらない
眠れなくてラジオ聞いてる
最近ちょっと食欲ない
お小遣いが足りない
弟とゲームの取り合いした
妹が可愛すぎる
今日から新学期
アルバイトの面接受けた
朝起きるのがつらい、眠い
月曜日しんどいw
英語の課題しんどすぎる笑
テスト範囲広すぎて絶望
数学わからなすぎて絶望してる笑
宿題終わらなくて限界
眠くて限界
この暑さもう無理
寒すぎて無理、布団から出られない
推しが卒業するのつらすぎる
失恋した、でも友達がいてくれてよかった
おばあちゃんの家に行ってきた
料理の練習してる、包丁使うの怖い
工作でカッター使って指切っちゃった、絆創膏貼った
釣りに行って橋の上から釣った
ビルの屋上にあるカフェに行った
駅のホームで友達に会った
電車に乗り遅れた
線路の近くの公園で遊んだ
ロープを使ったトレーニングしてる
キャンプで七輪使って魚焼いた
風邪ひいて薬飲んで寝てた
睡眠薬のCMってなんで夜多いんだろ
歴史で切腹の話習った
推理小説で毒を飲む場面がこわかった
ゾンビ映画で殺されまくった
マイクラで溶岩に落ちて死んだ
スプラで何回もやられた
バスケで突き指した
ダイエット中なのにお菓子食べた
今日こそ早く寝る
今夜は流星群が見えるらしい
今から友達と通話する
今日このあとバイト
今すぐ寝たい
これからご飯食べる
今日死ぬほど走った
死ぬ気で勉強する
命がけで推しのチケット取った
昼休みに屋上で友達としゃべった
彼氏とケンカしたけど仲直りした
友達が死ぬほど笑ってた
お兄ちゃんに殴られる夢見た笑
ママにゲームやりすぎって怒られた
父とキャッチボールした
家族で旅行行きたい
en: I'm dead tired lol
en: my mom is gonna kill me if I fail this test haha
en: I'm so hungry I could die
en: I just bought rope for the camping trip
en: I took some cold medicine and feel sleepy
en: going to the rooftop cafe tonight
en: the exam is tomorrow, I'm freaking out
en: can you recommend a good book?
テスト死んだ
数学のテスト終わった、死んだ
死ぬほど眠い
推しが尊すぎて死ねる
死ぬほど笑った
殺す気か笑
ゲームで死んだ
キャンプのロープ買った
風邪薬を飲んだから眠い
屋上の庭園がきれいだった
暑すぎて死ぬ
部活きつすぎて死ぬかと思った
宿題多すぎてもう無理w
推しのライブ最高すぎて昇天した
筋肉痛で死にそう
お腹すいて死にそう
ガチャ爆死した
尊死
今日の夕飯カレーだった
明日テストだるい
友達とカラオケ行った
眠れないけど明日休みだからいいや
部活の先輩が優しい
学校の屋上でお弁当食べた
包丁で野菜切るの上手くなった
髪切った！
電車遅れてる
線路沿いを散歩した
橋の写真撮った
頭痛薬飲んだら治った
花粉症の薬飲み忘れた
死亡フラグ立ったw
このゲーム死にゲーすぎる
ホラー映画見て死ぬほど怖かった
穴があったら入りたい
話し相手がほしい
最近ひとりでご飯食べてる
友達が少なくてちょっと寂しい
こんにちは
相談してもいいですか
話を聞いてほしいです
ありがとう、少し楽になった
進路に迷ってる
バイトの先輩が苦手
親とケンカした
好きな人に既読無視された
部活やめようか迷ってる
友達がテスト死んだって言ってた笑
弟がゲームで死にまくってて笑う
てすとしんだ
しぬほどねむい
おしがとうとい
今から塾
今夜ライブ配信見る
今日はカレー
今から飛行機乗る
今日薬局行く
殺虫剤で虫を殺した
ドラマで首吊りのシーンがあって怖かった
ホームセンターでロープと釘を買った
縄跳びの練習してる
ロープウェイ乗った
綱引きで負けた
酔い止め飲んだのにバス酔った
胃薬飲んでから寝る
屋上ビアガーデン行きたい
ホームルーム長すぎ
踏切待ちが長い
歩道橋から夕日見た
前髪切りすぎた
電話切られた
締め切りやばい、死ぬ
課題終わらなくて死にそう
寝不足で死んでる
笑いすぎてお腹痛い、死ぬ
この問題殺しにきてる
先生の話長すぎて意識飛んだ
今日めっちゃ楽しかった
猫が可愛すぎてしんどい
推しが結婚して立ち直れないw
レポート爆死した
体育のマラソン死ぬかと思った
ポケモンの技で自爆した
限界オタクなので許して
孤独のグルメ見てる
死ぬまでに一回オーロラ見たい
必死で勉強してる
今まで一度も遅刻したことない
今度一緒に遊ぼう
熱が出て学校休んだ
おばあちゃんが入院した
飼ってた金魚が死んじゃった、悲しい
ちょっと疲れたけど頑張る
明日の朝早いから寝るね
バイト代入った！
誕生日プレゼント何がいいかな
弟がうるさい
部屋の片付けしてる
雨で部活なくなった
ゲームのボスに何回も殺された
腹減りすぎて死ぬ
眠すぎて死ぬ
今日から夏休み
宿題の答え教えて
カップラーメン3分待てない
文化祭の準備で遅くなった
卒業式で泣いた
友達がODっていうバンドにはまってる
OD（オーバードライブ）のエフェクター買った
自殺防止のポスターを美術で描いた
小説で主人公が屋上に行く場面が好き
映画で橋から飛び降りるシーンがすごかった
ボルダリングで落ちた
スマホの充電が死んだ
パソコン死んだ、最悪
en: this exam killed me lol
en: I'm dying of laughter
en: I could die for a pizza right now
en: my phone died
en: I'm so bored today
en: my cat is so cute I can't even
en: can I talk to someone?
en: thanks, I feel a bit better
en: the homework is killing me lol
en: that movie was to die for
""",
}

# What led up to a message, shared by every level: a hard day is not a risk by itself; what the person
# says about it is. Used only in training sentences ("{situation}、{core}").
SITUATIONS = [
    "受験に落ちて", "部活でミスして", "親とケンカして", "彼氏に振られて", "友達に無視されて", "バイトで怒られて", "テストの点が悪くて",
    "クラスで浮いてて", "夜眠れなくて", "スマホを取り上げられて", "転校してから", "学校を休みがちになってから", "SNSで悪口を書かれて",
    "進路のことで親に反対されて", "仕事を辞めてから", "一人暮らしを始めてから", "好きな人に既読無視されて", "先生に怒られて",
    "グループLINEから外されて", "親が離婚してから", "引っ越してから友達がいなくて", "毎日残業で", "就活がうまくいかなくて",
]
# Low answers to a hard day: sad, angry or tired, and still going on.
COPING = [
    "ちょっとへこんでる", "落ち込んでるけど明日は頑張る", "友達に話したら少し楽になった", "ムカついた", "悲しかったけど寝たら落ち着いた",
    "まあいっか", "しばらく一人になりたい気分", "誰かに聞いてほしくて", "甘いもの食べて元気出す", "泣いたらすっきりした",
    "どうしたらいいかわからない", "モヤモヤしてる", "イライラが止まらない", "気分転換に散歩してくる", "正直ちょっと寂しい",
]
# Everyday chat, composed: when, with whom, what, and how it went.
EVERYDAY = (
    ["昨日", "今日", "週末", "放課後", "夏休みに", "さっき", "今度", "日曜に", "明日"],
    ["友達と", "家族と", "部活のみんなと", "彼氏と", "妹と", "一人で", "クラスの子と", "おばあちゃんと"],
    ["カラオケ", "映画", "買い物", "海", "図書館", "ご飯", "ゲーセン", "公園", "水族館", "ライブ", "お祭り", "焼肉", "プリ"],
    ["に行った", "に行きたい", "に行く予定", "楽しかった", "行ってきた！", "行けなかった", "最高だった", "疲れたけど楽しかった"],
)
TRAINING_ONLY = {"low": 200, "medium": 60, "high": 60, "imminent": 30}


# Openings and endings shared by every level, so that a level is learned from what a message says and
# not from how it starts; each level adds a few of its own, with the meaning they carry.
OPENINGS_JA = ["", "", "", "なんか", "もう", "正直", "ねえ、", "あのね、", "聞いて、", "最近", "今日", "さっき", "実は", "すみません、",
               "相談です。", "てか", "まじで", "初めまして、", "ちょっと聞いて、", "やっぱり"]
ENDINGS_JA = ["", "", "", "。", "…", "...", "？", "😢", "🥲", "💦", "。どう思う？", "。話聞いてほしい", "！", "〜", "。"]
EXTRA_ENDINGS_JA = {
    "risk": ["😭", "。誰にも言えない", "。どうしたらいい？", "。助けてほしい", "。こわい", "。親には言えない"],
    "low": ["笑", "w", "www", "😂", "🤣", "ｗ", "草", "✨", "😆", "…笑"],
}
OPENINGS_EN = ["", "", "honestly ", "hey, ", "i think ", "sorry, ", "so ", "ok so "]
ENDINGS_EN = ["", ".", "...", "!", " 😢", " idk"]
EXTRA_ENDINGS_EN = {"risk": [" what do I do", " please help"], "low": [" lol", " 😂", " haha"]}


def _cores(level: str) -> list[tuple[str, list[str], str]]:
    """(sentence, tags, language) for each core of `level`."""
    cores = []
    for line in CORES[level].strip().splitlines():
        text, _, codes = line.partition("|")
        language = "en" if text.startswith("en:") else "ja"
        text = text.removeprefix("en:").strip()
        cores.append((text, [TAG_CODES[c] for c in codes.split()], language))
    return cores


def _spell(text: str, rng: random.Random) -> str:
    """A spelling people really type: katakana, a stretched vowel, a typo, spaces, or as written."""
    choice = rng.random()
    if choice < 0.12:
        return "".join(chr(ord(c) + 0x60) if "ぁ" <= c <= "ゖ" else c for c in text)
    if choice < 0.24 and len(text) > 2:
        i = rng.randrange(1, len(text))
        stretch = text[i - 1] if text[i - 1] in "あいうえおぁぃぅぇぉ" else rng.choice("ーっ〜")
        return text[:i] + stretch * rng.randint(1, 3) + text[i:]
    if choice < 0.32 and len(text) > 4:
        i = rng.randrange(1, len(text) - 1)
        return text[:i] + text[i + 1 :]
    if choice < 0.38:
        return text.replace("、", " ").replace("。", " ")
    return text


def _variants(text: str, language: str, risk: bool, count: int, rng: random.Random) -> list[str]:
    kind = "risk" if risk else "low"
    openings = OPENINGS_EN if language == "en" else OPENINGS_JA
    endings = ENDINGS_EN + EXTRA_ENDINGS_EN[kind] if language == "en" else ENDINGS_JA + EXTRA_ENDINGS_JA[kind]
    seen: dict[str, None] = {text: None}
    for _ in range(count * 8):
        if len(seen) >= count:
            break
        core = _spell(text, rng) if language == "ja" else text
        sentence = f"{rng.choice(openings)}{core}{rng.choice(endings)}"
        if language == "en" and rng.random() < 0.3:
            sentence = sentence.capitalize()
        seen.setdefault(sentence.strip(), None)
    return list(seen)


def written(level: str) -> list[tuple[str, list[str]]]:
    """(message, tags) for each line of `written/<level>.txt` (`message | tag codes`, or the message alone),
    then each message of that level in `written/*.jsonl` (`{"text", "level", "tags"}`, as other writers
    deliver them)."""
    messages = []
    for line in (WRITTEN_DIR / f"{level}.txt").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        text, _, codes = line.partition(" | ")
        messages.append((text.strip(), [TAG_CODES[c] for c in codes.split()]))
    for path in sorted(WRITTEN_DIR.glob("*.jsonl")):
        messages += [(e["text"].strip(), list(e.get("tags", []))) for e in read_jsonl(path) if e["level"] == level]
    return messages


def written_conversations() -> list[dict]:
    """Every conversation of `conversations/written/*.jsonl`: {"messages", "level", "kind", "tags"}."""
    conversations = []
    for path in sorted((CONVERSATIONS_DIR / "written").glob("*.jsonl")):
        conversations += [{key: e.get(key, []) for key in ("messages", "level", "kind", "tags")} for e in read_jsonl(path)]
    return conversations


def build_conversations(train_messages: list[dict], seed: int = SEED) -> tuple[list[dict], list[dict], list[dict]]:
    """The train, validation and held-out conversations: the written ones split by conversation (a
    conversation and its near-duplicates stay on one side), and training's composed windows."""
    train: list[dict] = []
    validation: list[dict] = []
    heldout: list[dict] = []
    for conversation in written_conversations():
        share = _share(_whole(conversation), seed)
        split = heldout if share < HELDOUT_SHARE else validation if share < HELDOUT_SHARE + VALIDATION_SHARE else train
        split.append(conversation)
    heldout = _unseen(heldout, NearDuplicates(validation, _whole), validation, _whole)
    seen = NearDuplicates(train, _whole)
    validation = _unseen(validation, seen, train, _whole)
    heldout = _unseen(heldout, seen, train, _whole)
    rng = random.Random(f"{seed}:conversations")
    train += _composed_windows(train_messages, int(len(train) * COMPOSED_WINDOW_SHARE), rng)
    blind = blind_index(CONVERSATIONS_DIR, _whole)
    train, validation, heldout = ([c for c in examples if not blind.has(_whole(c))] for examples in (train, validation, heldout))
    for examples in (train, validation, heldout):
        rng.shuffle(examples)
    return train, validation, heldout


def _whole(conversation: dict) -> str:
    """A conversation's messages as one text, for hashing and near-duplicate search."""
    return "\n".join(conversation["messages"])


def _composed_windows(messages: list[dict], count: int, rng: random.Random) -> list[dict]:
    """A few calm training messages, then any training message, at that last message's level.

    What comes before a message rarely defuses it; people open with small talk and then say it. These
    teach the reader to find one message in a window without the written conversations' wording.
    """
    calm = [e for e in messages if e["level"] == "low" and not e["text"].isascii() and len(e["text"]) < 60]
    others = [e for e in messages if not e["text"].isascii() and len(e["text"]) < 80]
    windows = []
    for _ in range(count):
        last = rng.choice(others)
        before = [rng.choice(calm)["text"] for _ in range(rng.randint(1, 3))]
        windows.append({"messages": [*before, last["text"]], "level": last["level"], "kind": "composed", "tags": last["tags"]})
    return windows


def build(seed: int = SEED) -> tuple[list[dict], list[dict], list[dict]]:
    """The train, validation and held-out examples."""
    rng = random.Random(seed)
    train: list[dict] = []
    validation: list[dict] = []
    heldout: list[dict] = []
    for level in TARGETS:
        for text, tags in written(level):
            share = _share(text, seed)
            split = heldout if share < HELDOUT_SHARE else validation if share < HELDOUT_SHARE + VALIDATION_SHARE else train
            split.append({"text": text, "level": level, "tags": tags})
    # A second spelling of each written training message, so that typed variants (katakana, a stretched
    # vowel, a dropped character) are learned from the varied wording too, not from the cores alone. Each
    # spelling is drawn from the message's own text: drawn from the shared stream, every message written
    # later would respell the others, and a respelled near-duplicate could let a message out of training.
    for example in list(train):
        spelled = _spell(example["text"], random.Random(f"{seed}:{example['text']}"))
        if spelled != example["text"] and not example["text"].isascii():
            train.append({**example, "text": spelled})
    for level, target in TARGETS.items():
        cores = _cores(level)
        per_core = -(-target // len(cores))
        for text, tags, language in cores:
            for sentence in _variants(text, language, level != "low", per_core, rng):
                train.append({"text": sentence, "level": level, "tags": tags})
    train += _training_only(rng)
    # Wording seen in training is no test: it trains instead. A held-out message like a validation one joins
    # validation first, so that nothing moved into training afterwards is like a message left in validation.
    heldout = _unseen(heldout, NearDuplicates(validation), validation)
    seen = NearDuplicates(train)
    validation = _unseen(validation, seen, train)
    heldout = _unseen(heldout, seen, train)
    train += _compounds(train, rng)
    # The blind sets measure wording never seen: whatever is like one of their messages is left out.
    blind = blind_index(RISK_DIR)
    train, validation, heldout = ([e for e in examples if not blind.has(e["text"])] for examples in (train, validation, heldout))
    for examples in (train, validation, heldout):
        rng.shuffle(examples)
    return train, validation, heldout


def _share(text: str, seed: int) -> float:
    """Where a message falls in [0, 1), from its text alone: a message stays in its split when others are
    written, so what was tuned on (validation) never becomes what is reported (held-out)."""
    digest = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _unseen(examples: list[dict], seen: NearDuplicates, split: list[dict], text: Callable[[dict], str] = itemgetter("text")) -> list[dict]:
    """The examples unlike anything in `seen` (the texts of `split`); the rest are moved to `split`."""
    kept = []
    for example in examples:
        if seen.has(text(example)):
            split.append(example)
            seen.add(text(example))
        else:
            kept.append(example)
    return kept


def _training_only(rng: random.Random) -> list[dict]:
    """Composed sentences that only training sees: situations with what people say, and everyday chat."""
    examples = []
    for level, count in TRAINING_ONLY.items():
        cores = [(text, tags) for text, tags, language in _cores(level) if language == "ja"]
        for _ in range(count):
            if level == "low" and rng.random() < 0.7:
                text, tags = "".join(rng.choice(part) for part in EVERYDAY), []
            elif level == "low":
                text, tags = f"{rng.choice(SITUATIONS)}、{rng.choice(COPING)}", []
            else:
                core, tags = rng.choice(cores)
                text = f"{rng.choice(SITUATIONS)}、{_spell(core, rng)}"
            examples.append({"text": text + rng.choice(ENDINGS_JA), "level": level, "tags": tags})
    return examples


def _compounds(examples: list[dict], rng: random.Random) -> list[dict]:
    """Two short messages run together, an everyday one first: the level is the second one's.

    People rarely open with the worst; "テスト死んだ。でも本当に死にたい" must read as high, and a chat
    that only mentions a test must stay low.
    """
    everyday = [e for e in examples if e["level"] == "low" and not e["text"].isascii() and len(e["text"]) < 60]
    others = [e for e in examples if not e["text"].isascii() and len(e["text"]) < 80]
    compounds = []
    for _ in range(int(len(examples) * COMPOUND_SHARE)):
        first, second = rng.choice(everyday), rng.choice(others)
        joiner = rng.choice(["。", "、", " ", "。でも", "。それより", "\n"])
        compounds.append({"text": f"{first['text']}{joiner}{second['text']}", "level": second["level"], "tags": second["tags"]})
    return compounds


def trigrams(text: str) -> set[str]:
    """Character trigrams of the text without spaces and in lower case (short texts: the text itself)."""
    text = "".join(text.lower().split())
    return {text[i : i + 3] for i in range(max(1, len(text) - 2))}


def similarity(a: set[str], b: set[str]) -> float:
    """Jaccard similarity of two trigram sets."""
    return len(a & b) / len(a | b) if a or b else 1.0


class NearDuplicates:
    """Texts indexed by trigram, to ask quickly whether a text is (nearly) the same sentence as one of them."""

    def __init__(self, examples: list[dict] = (), text: Callable[[dict], str] = itemgetter("text")) -> None:
        self.grams: list[set[str]] = []
        self.by_gram: dict[str, list[int]] = {}
        for example in examples:
            self.add(text(example))

    def add(self, text: str) -> None:
        for gram in trigrams(text):
            self.by_gram.setdefault(gram, []).append(len(self.grams))
        self.grams.append(trigrams(text))

    def closest(self, text: str) -> float:
        """The highest similarity of `text` to an indexed text (0 when none shares a trigram)."""
        grams = trigrams(text)
        # Only texts sharing a trigram can be similar: count what each shares, without building sets.
        shared = Counter(i for gram in grams for i in self.by_gram.get(gram, ()))
        return max((n / (len(grams) + len(self.grams[i]) - n) for i, n in shared.items()), default=0.0)

    def has(self, text: str) -> bool:
        return self.closest(text) >= NEAR_DUPLICATE


def blind_index(folder: Path, text: Callable[[dict], str] = itemgetter("text")) -> NearDuplicates:
    """The examples of `folder`'s blind sets (`blind*.jsonl`), indexed to ask whether another is like one of them."""
    return NearDuplicates([e for path in sorted(folder.glob("blind*.jsonl")) for e in read_jsonl(path)], text)


def read_jsonl(path: Path | str) -> list[dict]:
    """The examples of a JSONL file, one object per non-empty line."""
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def write_jsonl(path: Path, examples: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for example in examples:
            out.write(json.dumps(example, ensure_ascii=False) + "\n")


def main() -> None:
    messages = build()
    for folder, splits in ((RISK_DIR, messages), (CONVERSATIONS_DIR, build_conversations(messages[0]))):
        for name, examples in zip(SPLITS, splits):
            write_jsonl(folder / f"{name}.jsonl", examples)
            counts = Counter(e["level"] for e in examples)
            print(f"{folder.name}/{name}: {len(examples)} {dict(sorted(counts.items()))}")


if __name__ == "__main__":
    main()
