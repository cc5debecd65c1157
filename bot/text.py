"""Cleaning residents' raw text, reading numbers in any script, and guessing a language by script."""

from __future__ import annotations

import re
import unicodedata

MAX_TEXT_LENGTH = 1000

# Format characters that only hide or reorder text: zero-width, bidi embeddings/overrides/isolates.
_INVISIBLE = {
    "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff", "\u00ad",
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
}
# ZWJ/ZWNJ carry meaning inside Arabic-script and Indic words; keep them between letters.
_JOINERS = {"\u200c", "\u200d"}


def clean(raw: str | None) -> str:
    """NFC-normalises, drops control and invisible characters, collapses spaces, trims."""
    if not raw:
        return ""
    text = unicodedata.normalize("NFC", raw)
    out: list[str] = []
    for i, ch in enumerate(text):
        if ch in ("\n", "\t"):
            out.append(" " if ch == "\t" else "\n")
            continue
        if ch in _JOINERS:
            before = text[i - 1] if i else ""
            after = text[i + 1] if i + 1 < len(text) else ""
            if before.isalpha() and after.isalpha():
                out.append(ch)
            continue
        if ch in _INVISIBLE:
            continue
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs", "Co", "Cn"):
            continue
        if category == "Cf" and ch not in ("\u0f0b",):
            continue
        out.append(ch)
    lines = [" ".join(line.split()) for line in "".join(out).split("\n")]
    return "\n".join(line for line in lines if line).strip()


def has_visible_content(text: str) -> bool:
    """True when the text has a letter, digit, mark or symbol (not only punctuation)."""
    return any(unicodedata.category(ch)[0] in "LNS" for ch in text)


def parse_number(text: str) -> int | None:
    """Reads '3', '３', '٣', '۳' or '༣' (an optional trailing '.' or ')' too) as an int."""
    stripped = text.strip().rstrip(".)．、")
    if not stripped or len(stripped) > 4:
        return None
    digits = []
    for ch in stripped:
        try:
            digits.append(str(unicodedata.decimal(ch)))
        except (TypeError, ValueError):
            return None
    return int("".join(digits))


def guess_language(text: str, language_ids: tuple[str, ...]) -> str | None:
    """The configured language that the script of `text` points to, if any.

    Tibetan script → bo; Arabic script → ug; Cyrillic → mn; Han → zh_Hant when it uses
    characters found only in traditional writing, else zh_Hans; Latin → en.
    """
    counts: dict[str, int] = {}
    for ch in text:
        script = _script(ch)
        if script:
            counts[script] = counts.get(script, 0) + 1
    if not counts:
        return None
    script = max(counts, key=counts.get)
    if script == "Han":
        traditional = sum(ch in _TRADITIONAL_ONLY for ch in text)
        simplified = sum(ch in _SIMPLIFIED_ONLY for ch in text)
        candidates = ["zh_Hant", "zh_Hans"] if traditional > simplified else ["zh_Hans", "zh_Hant"]
    else:
        candidates = _SCRIPT_LANGUAGES.get(script, [])
    for candidate in candidates:
        if candidate in language_ids:
            return candidate
    return None


def _script(ch: str) -> str | None:
    code = ord(ch)
    if 0x0F00 <= code <= 0x0FFF:
        return "Tibetan"
    if 0x0600 <= code <= 0x06FF or 0xFB50 <= code <= 0xFEFF:
        return "Arabic"
    if 0x0400 <= code <= 0x04FF:
        return "Cyrillic"
    if 0x1800 <= code <= 0x18AF:
        return "Mongolian"
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF:
        return "Han"
    if ch.isascii() and ch.isalpha():
        return "Latin"
    return None


_SCRIPT_LANGUAGES = {
    "Tibetan": ["bo"],
    "Arabic": ["ug"],
    "Cyrillic": ["mn"],
    "Mongolian": ["mn"],
    "Latin": ["en"],
}

# Common characters written differently in the two Chinese scripts (pairs: simplified, traditional).
_PAIRS = (
    "们們 这這 么麼 个個 来來 时時 说說 对對 会會 没沒 还還 发發 问問 题題 务務 区區 电電 梯梯 "
    "坏壞 灯燈 楼樓 门門 报報 修修 请請 谢謝 语語 换換 开開 关關 东東 车車 长長 见見 间間 "
    "实實 现現 动動 给給 让讓 认認 识識 话話 边邊 应應 该該 里裡 后後 过過 从從 经經 办辦 "
    "处處 录錄 单單 号號 务務 险險 气氣 暖暖 卫衛 环環 邻鄰 纠糾 纷紛 噪噪 隐隱 患患 "
    "护護 医醫 药藥 帮幫 员員 吗嗎 声聲 听聽 读讀 写寫 钱錢 买買 卖賣 远遠 进進 为為 "
    "无無 与與 业業 并並 两兩 几幾 么麼 产產 亲親 众眾 优優 传傳 伤傷 体體 余餘 "
    "图圖 块塊 坛壇 场場 声聲 头頭 夹夾 导導 层層 岁歲 币幣 帐帳 库庫 废廢 张張 "
    "态態 总總 戏戲 扫掃 执執 扩擴 拥擁 择擇 据據 损損 断斷 无無 旧舊 术術 机機 杂雜 "
    "权權 条條 检檢 楼樓 欢歡 毕畢 汇匯 沟溝 注註 洁潔 浅淺 测測 济濟 渐漸 满滿 "
    "灭滅 炉爐 烟煙 热熱 爱愛 状狀 独獨 猫貓 猪豬 玩玩 现現 环環 疗療 监監 盖蓋 "
    "码碼 确確 种種 积積 称稱 窗窗 笔筆 筑築 简簡 签簽 类類 纸紙 线線 练練 组組 "
    "细細 终終 结結 给給 络絡 统統 继繼 续續 维維 网網 罗羅 职職 联聯 肤膚 胜勝 "
    "脑腦 节節 药藥 获獲 虽雖 虾蝦 补補 装裝 观觀 规規 视視 览覽 订訂 计計 记記 "
    "讲講 许許 论論 设設 访訪 证證 评評 识識 试試 诉訴 详詳 语語 误誤 调調 谁誰 "
    "负負 贵貴 费費 资資 赶趕 轮輪 软軟 较較 辆輛 达達 运運 还還 这這 选選 递遞 "
    "邮郵 钟鐘 铁鐵 银銀 锁鎖 错錯 键鍵 门門 闭閉 问問 闲閒 闻聞 阅閱 队隊 阳陽 "
    "阴陰 际際 陈陳 难難 页頁 顶頂 项項 顺順 须須 顾顧 预預 领領 频頻 题題 风風 "
    "飞飛 饭飯 馆館 驾駕 验驗 鱼魚 鸡雞 齐齊 龄齡"
)
_SIMPLIFIED_ONLY = frozenset(p[0] for p in _PAIRS.split() if p[0] != p[1])
_TRADITIONAL_ONLY = frozenset(p[1] for p in _PAIRS.split() if p[0] != p[1])


# --- hiding contact details in residents' free text ------------------------------------------
MASK = "•••"
_CHINESE_DIGITS = "〇零一二三四五六七八九两兩十百"
_PHONE_SEPARATORS = " -./()+·"
# What a phone number looks like once every digit (any script, Chinese numerals too) reads 0:
# at least seven digits, grouped by spaces, dots, dashes, slashes or brackets.
_PHONE_SHAPE = re.compile(r"\+?0[0 \-./()+·]{5,}0")
_DATE_SHAPE = re.compile(r"^0{4}[-./]0{1,2}[-./]0{1,2}$")
_NUMBER = r"[0-9０-９༠-༩٠-٩" + _CHINESE_DIGITS + r"]+"
# Places written into a description: a number joined to an address word, and road names.
_ADDRESS_PATTERNS = (
    # 3号楼2单元501室, 幸福路12号, 5棟3樓, 12弄
    re.compile(r"(?:[\u4e00-\u9fff]{1,6}(?:路|街|巷|道|弄|里|村|小区|小區|社区|社區))?"
               r"(?:" + _NUMBER + r"\s*(?:号楼|號樓|号|號|楼|樓|栋|棟|幢|座|单元|單元|室|户|戶|"
               r"弄|层|層|门|門|排|组|組)\s*)+"),
    re.compile(r"[\u4e00-\u9fff]{1,6}(?:路|街|巷|大道)(?=\s|$|[，。,.])"),
    # room 501, flat 3B, building 3, 12 Xingfu Road
    re.compile(r"\b(?:room|rm|flat|apt|apartment|unit|building|bldg|block|floor|house|no\.?)"
               r"\s*#?\s*\d+[A-Za-z]?\b", re.IGNORECASE),
    re.compile(r"\b\d+[A-Za-z]?(?:\s+[A-Z][A-Za-z]*){1,3}\s+(?:Road|Rd|Street|St|Lane|Ln|"
               r"Avenue|Ave|Drive|Dr|Way)\b\.?"),
    # 3-р байр, 12 тоот, 5 давхар
    re.compile(r"\d+\s*(?:-?\s*(?:р|р\.|дугаар))?\s*(?:байр|тоот|орц|давхар|хороо|гудамж)\w*",
               re.IGNORECASE),
    # 3-بىنا, 12-ئۆي, 5-قەۋەت
    re.compile(r"[0-9٠-٩]+\s*-?\s*(?:بىنا|ئۆي|قەۋەت|كوچا|نومۇر|ئىشىك|ئېغىز)\S*"),
    # ཁང་མིག་ཨང་༣, ཐོག་ ༥, ཨང་ 12
    re.compile(r"(?:ཁང་མིག|ཁང་པ|ཐོག|ཨང)[་\s]*(?:ཨང[་\s]*)?[༠-༩0-9]+"),
)


def _digit_value(ch: str) -> bool:
    if ch in _CHINESE_DIGITS:
        return True
    try:
        unicodedata.decimal(ch)
        return True
    except (TypeError, ValueError):
        return False


def _phone_shape(ch: str) -> str:
    if _digit_value(ch):
        return "0"
    folded = unicodedata.normalize("NFKC", ch)
    return folded if len(folded) == 1 and folded in _PHONE_SEPARATORS else "x"


def mask_phones(text: str) -> str:
    """Phone-like runs become •••: 13700001111, 137 0000 1111, 138.1234.5678, +86 138…,
    full-width digits and Chinese numerals (一三八…) alike. Dates are left as they are."""
    shape = "".join(_phone_shape(ch) for ch in text)  # one character for each of text's
    out, last = [], 0
    for match in _PHONE_SHAPE.finditer(shape):
        digits = match.group().count("0")
        if digits < 7 or _DATE_SHAPE.match(match.group()):
            continue
        out += [text[last:match.start()], MASK]
        last = match.end()
    out.append(text[last:])
    return "".join(out)


def mask_contacts(text: str | None) -> str:
    """The text with phone numbers and written addresses replaced by •••.

    For a request whose writer erased their data (/forget) while it was still open: staff
    keep what the problem is, not how to find or call the person. Best effort: a place
    written in words alone ("next to the old school") is not recognised.
    """
    masked = mask_phones(text or "")
    for pattern in _ADDRESS_PATTERNS:
        masked = pattern.sub(lambda m: MASK if m.group().strip() else m.group(), masked)
    return masked
