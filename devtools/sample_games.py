"""Write the bundled sample's extra games, ``worker/data/games/*.jsonl``: fictional volleyball matches whose chat
is put together from the hand-written Traditional-Chinese phrases below (nothing is copied from real chat).

Each game has its own teams, players and viewers, about 200 comments over two hours, and a heat that rises at
the start, at each set's close and at the decider, and falls between. Deterministic: the same seed writes the
same files, so the committed files are reproducible with ``python devtools/sample_games.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "worker" / "data" / "games"
LABELS = ("Cheer", "Game", "Broadcast", "Chat")

# (home, away, home players, away players, commentator): all names made up for the project.
MATCHES = [
    ("雷鳥", "海鷗", ("林小勇", "陳大山", "阿哲"), ("王子翔", "黃柏宇", "小黑"), "老周"),
    ("山貓", "銀狐", ("張家豪", "阿凱", "吳冠廷"), ("李承恩", "鄭宇軒", "大熊"), "阿德"),
    ("藍鯨", "火雀", ("許志明", "小胖", "蔡明哲"), ("周俊廷", "阿翔", "楊子豪"), "芳姐"),
    ("鐵衛", "疾風", ("高振宇", "阿樂", "洪家銘"), ("曾柏翰", "小馬", "謝宗翰"), "老周"),
    ("白熊", "黑鷹", ("潘冠宇", "阿傑", "江承翰"), ("簡志偉", "小林", "彭子軒"), "阿德"),
]

# Phrases by label set; {A}/{B} a team, {P} a player, {C} the commentator, {S} a score.
PHRASES: dict[tuple[str, ...], list[str]] = {
    ("Cheer",): [
        "{A}加油!!",
        "加油加油",
        "衝啊{A}",
        "{A}必勝",
        "🔥🔥🔥",
        "👏👏👏",
        "好耶!!",
        "太強了吧",
        "穩住 加油",
        "{A}衝一波",
        "撐住啊",
        "今天一定贏",
        "💪💪",
        "可以的 相信",
        "燃起來了",
    ],
    ("Game",): [
        "{P}今天狀態很好",
        "{B}換人了",
        "這球出界吧",
        "{S}了",
        "挑戰 看重播",
        "{P}發球失誤",
        "{B}叫暫停",
        "攔網沒跟上",
        "二傳分配很平均",
        "{A}接發不太穩",
        "這局拉開了",
        "{P}上場了",
        "裁判判觸網",
        "{B}教練在調整站位",
        "舉球太低了",
        "又是快攻",
        "{A}落後兩分",
        "輪轉到{P}發球",
        "這局{B}先到二十分",
        "防守站位很前面",
    ],
    ("Broadcast",): [
        "畫面卡住了",
        "聲音不同步",
        "有人也lag嗎",
        "{C}講得好",
        "重播看不清楚",
        "鏡頭一直晃",
        "畫質可以調高嗎",
        "廣告好長",
        "換台了?",
        "連結壞了 重開",
        "字幕比分沒更新",
        "收音好小聲",
    ],
    ("Chat",): [
        "晚安",
        "來了來了",
        "有人吃宵夜嗎",
        "剛下班",
        "明天要上班QQ",
        "哈哈哈哈",
        "第一次看排球",
        "想吃鹹酥雞",
        "好睏",
        "大家好",
        "貓在鍵盤上走",
        "今天好冷",
        "簽到",
        "哈囉",
        "笑死",
    ],
    ("Cheer", "Game"): [
        "{P}好球!!",
        "漂亮的攔網!!",
        "{P}扣殺 爽",
        "救起來了 好強",
        "{A}追平了 加油",
        "ACE!! {P}太猛",
        "這防守太神了",
        "局點 {A}拿下來!!",
        "反擊成功 讚",
    ],
    ("Game", "Broadcast"): ["重播看是有碰到", "{C}說是觸網", "比分牌跟畫面不一樣", "鏡頭沒拍到落點"],
    ("Cheer", "Broadcast"): ["{C}也好激動 哈哈", "重播再看一次 太帥"],
    ("Game", "Chat"): ["我阿嬤也在看{A}", "看{P}打球好療癒"],
    ("Broadcast", "Chat"): ["手機看好燙", "邊吃飯邊看直播"],
    ("Cheer", "Chat"): ["今晚值得熬夜 加油"],
}
# Label-set weights in quiet stretches and in hot ones (a close set, the decider).
QUIET = {
    ("Chat",): 5,
    ("Game",): 5,
    ("Broadcast",): 3,
    ("Cheer",): 2,
    ("Game", "Broadcast"): 1,
    ("Game", "Chat"): 1,
    ("Broadcast", "Chat"): 1,
}
HOT = {
    ("Cheer",): 6,
    ("Cheer", "Game"): 5,
    ("Game",): 4,
    ("Chat",): 1,
    ("Cheer", "Broadcast"): 1,
    ("Game", "Broadcast"): 1,
    ("Cheer", "Chat"): 1,
}
SUFFIXES = ["", "", "", " 哈哈", "!!", "~", " 真的", "啊"]
VIEWERS = [
    "夜貓子",
    "排球迷阿宏",
    "宵夜王",
    "攔網控",
    "小魚",
    "跳發男孩",
    "豆花伯",
    "咖哩飯",
    "貓奴小葵",
    "阿姨我不想努力了",
    "Amy",
    "Jason排球",
    "超手俠",
    "早餐吃蛋餅",
    "拖延症患者",
    "雞排妹",
    "鹹酥雞大師",
    "草莓牛奶",
    "阿土",
    "小藍",
]


@dataclass(frozen=True)
class Match:
    game: str
    home: str
    away: str
    players: tuple[str, ...]
    commentator: str


def _heat(t: float, peaks: list[float]) -> float:
    """Comments per minute at ``t`` minutes: a low floor with a bump around each peak."""
    return 0.8 + sum(5.0 * math.exp(-(((t - p) / 3.0) ** 2)) for p in peaks)


def _times(rng: random.Random, n: int, minutes: float, peaks: list[float]) -> list[float]:
    """``n`` times in [0, minutes), drawn by thinning in proportion to :func:`_heat`."""
    top = max(_heat(x / 4, peaks) for x in range(int(minutes * 4)))
    out: list[float] = []
    while len(out) < n:
        t = rng.uniform(0, minutes)
        if rng.random() * top < _heat(t, peaks):
            out.append(t)
    return sorted(out)


def _ts(minutes: float) -> str:
    s = int(minutes * 60)
    h, m, sec = s // 3600, s // 60 % 60, s % 60
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


def _text(rng: random.Random, labels: tuple[str, ...], match: Match, t: float) -> str:
    home_side = rng.random() < 0.6
    a, b = (match.home, match.away) if home_side else (match.away, match.home)
    score = f"{rng.randint(15, 24)}比{rng.randint(12, 24)}"
    phrase = rng.choice(PHRASES[labels]).format(A=a, B=b, P=rng.choice(match.players), C=match.commentator, S=score)
    return phrase + rng.choice(SUFFIXES) if not phrase.endswith(("!", "🔥", "👏", "💪")) else phrase


def game_rows(match: Match, seed: int, n: int = 200, minutes: float = 120.0) -> list[dict[str, object]]:
    rng = random.Random(seed)
    peaks = [2.0, *sorted(rng.uniform(20, 110) for _ in range(4)), minutes - 8]
    rows: list[dict[str, object]] = []
    for t in _times(rng, n, minutes, peaks):
        weights = HOT if _heat(t, peaks) > 2.5 else QUIET
        labels = rng.choices(list(weights), weights=list(weights.values()))[0]
        row: dict[str, object] = {
            "game": match.game,
            "text": _text(rng, labels, match, t),
            "user": rng.choice(VIEWERS),
            "ts": _ts(t),
        }
        row.update({name: int(name in labels) for name in LABELS})
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--seed", type=int, default=24)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for number, (home, away, hp, ap, commentator) in enumerate(MATCHES, 2):
        match = Match(f"sample-{number}", home, away, hp + ap, commentator)
        rows = game_rows(match, args.seed * 100 + number)
        path = args.out / f"{match.game}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        print(f"{path}: {len(rows)} comments, {home} vs {away}")


if __name__ == "__main__":
    main()
