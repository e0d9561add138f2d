"""A realistic, deterministic fleet for demos, tests and benchmarks.

``generate_fleet(6, 600, 25, seed)`` gives 600 schools spread evenly over 6 districts with 25 cameras each:
15,000 rows. Names follow Qingdao's districts and the way Chinese schools are named; kindergartens and primary
schools are the most common kinds; each school's cameras cover its gates, guard post, playground, canteen,
perimeter, water (when it has a pond or pool), dormitories (boarding schools), corridors and classrooms, in
that order of priority. Streams are Hikvision- or Dahua-style RTSP URLs on a per-school private /24, either
through the school's NVR (one channel per camera) or straight from each IP camera.

Codes are unique and depend only on the counts: a district keeps its administrative division code (市南区
370202), a school is its district's code plus a 4-digit sequence, and a camera is its school's code plus a
GB/T 28181-style device suffix (20 digits in all). Everything else depends only on the seed.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from dataclasses import dataclass

from registry.fleet_file import COLUMNS
from registry.fleet_values import format_tags
from registry.models import SceneType, SchoolKind

# Real division codes first, so the demo looks like Qingdao (and its neighbours, for bigger fleets).
DISTRICTS: tuple[tuple[str, str], ...] = (
    ("370202", "市南区"),
    ("370203", "市北区"),
    ("370213", "李沧区"),
    ("370212", "崂山区"),
    ("370211", "黄岛区"),
    ("370214", "城阳区"),
    ("370215", "即墨区"),
    ("370281", "胶州市"),
    ("370283", "平度市"),
    ("370285", "莱西市"),
    ("370302", "淄川区"),
    ("370303", "张店区"),
    ("370304", "博山区"),
    ("370305", "临淄区"),
    ("370602", "芝罘区"),
    ("370611", "福山区"),
    ("370612", "牟平区"),
    ("370613", "莱山区"),
    ("370702", "潍城区"),
    ("370703", "寒亭区"),
    ("370704", "坊子区"),
    ("370705", "奎文区"),
)
MAX_DISTRICTS = 99
MAX_SCHOOLS_PER_DISTRICT = 9999
MAX_CAMERAS_PER_SCHOOL = 1000
NVR_CHANNELS = 32

KIND_WEIGHTS: dict[SchoolKind, float] = {
    SchoolKind.KINDERGARTEN: 0.38,
    SchoolKind.PRIMARY: 0.32,
    SchoolKind.MIDDLE: 0.15,
    SchoolKind.HIGH: 0.06,
    SchoolKind.VOCATIONAL: 0.04,
    SchoolKind.OTHER: 0.05,
}
BOARDING_SHARE = {SchoolKind.MIDDLE: 0.2, SchoolKind.HIGH: 0.8, SchoolKind.VOCATIONAL: 0.9}
WATER_SHARE = 0.15
KEY_SCENES = frozenset({SceneType.GATE, SceneType.WATER, SceneType.GUARD_POST})
SCENE_TAGS: dict[SceneType, tuple[str, ...]] = {
    SceneType.GATE: ("出入口", "重点"),
    SceneType.GUARD_POST: ("门卫", "重点"),
    SceneType.WATER: ("防溺水", "重点"),
    SceneType.CANTEEN: ("食品安全",),
    SceneType.DORMITORY: ("住宿",),
    SceneType.PERIMETER: ("周界",),
    SceneType.PLAYGROUND: ("户外",),
    SceneType.CORRIDOR: ("楼内",),
    SceneType.CLASSROOM: ("教学区",),
    SceneType.OTHER: (),
}

_ROADS = (
    "香港中路", "延安三路", "宁夏路", "辽阳西路", "台东一路", "南京路", "福州路", "山东路", "黑龙江路",
    "重庆路", "青威路", "株洲路", "九水东路", "松岭路", "海尔路", "银川路", "长江路", "井冈山路", "正阳路",
    "文阳路", "春阳路", "烟青路", "鹤山路", "蓝鳌路", "金水路", "巨峰路", "书院路", "劲松七路",
)  # fmt: skip
_SCHOOL_ROADS = (
    "江苏路", "嘉峪关路", "镇江路", "宁夏路", "香港路", "燕儿岛路", "徐州路", "太平路", "洛阳路", "四方路",
    "湖岛路", "永平路", "沧口路", "汾阳路", "浮山路", "麦岛路", "金门路", "湛山路", "兴隆路", "振华路",
)  # fmt: skip
_KG_BRANDS = (
    "金色童年", "阳光宝贝", "七彩虹", "小太阳", "启明星", "童心", "春苗", "海星", "贝贝", "彩虹桥",
    "蓝天", "爱心", "小天使", "快乐童年", "育英", "小博士", "星星", "蒲公英", "向日葵", "小海螺",
)  # fmt: skip
_VOCATIONAL_FIELDS = (
    "商务", "旅游", "电子", "交通", "烹饪", "艺术", "城市管理", "财经", "工贸", "机电", "海洋", "外事服务",
)  # fmt: skip
_UNIVERSITIES = ("青岛大学", "中国海洋大学", "青岛科技大学", "青岛理工大学", "青岛农业大学")
_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗于董梁宋"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华建国红梅玉兰志"
_USERNAMES = ("admin", "admin", "admin", "viewer", "duty", "jk_ro")
_PASSWORD_CHARS = string.ascii_letters + string.digits + "!@#$%^&*"
_CN_DIGITS = "零一二三四五六七八九"


def chinese_number(n: int) -> str:
    """1 → 一, 12 → 十二, 105 → 一百零五 (1 to 9999), as schools are numbered: 第十二中学."""
    if not 1 <= n <= 9999:
        raise ValueError(f"{n} is out of range 1-9999")
    if 10 <= n < 20:
        return "十" + (_CN_DIGITS[n - 10] if n > 10 else "")
    out, zero = "", False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit = n // value % 10
        if digit:
            out += ("零" if zero and out else "") + _CN_DIGITS[digit] + unit
            zero = False
        else:
            zero = True
    return out


@dataclass
class _School:
    district_code: str
    district_name: str
    code: str
    name: str
    kind: SchoolKind
    address: str
    contact_name: str
    contact_phone: str
    subnet: str
    boarding: bool
    water: bool
    vendor: str
    via_nvr: bool
    username: str
    password: str


class _Namer:
    """Unique school names: landmark-style names first, then numbered ones (第三小学) that never repeat."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()
        self.counters: dict[str, int] = {}

    def _next(self, key: str) -> int:
        self.counters[key] = self.counters.get(key, 0) + 1
        return self.counters[key]

    def name(self, kind: SchoolKind, district: str) -> str:
        """A name for a new school of ``kind`` in ``district``, never given before."""
        rng = self.rng
        road = rng.choice(_SCHOOL_ROADS)
        # (counter, template): a counter numbers city-wide names ("青岛第二中学") and only advances when used.
        options: dict[SchoolKind, list[tuple[str | None, str]]] = {
            SchoolKind.KINDERGARTEN: [
                (None, f"{rng.choice(_KG_BRANDS)}幼儿园"),
                (None, f"{district}实验幼儿园"),
                (None, f"{district}机关幼儿园"),
                (None, f"{rng.choice(_KG_BRANDS)}幼儿园{district[:2]}分园"),
            ],
            SchoolKind.PRIMARY: [
                (None, f"{road}小学"),
                (None, f"{district}实验小学"),
                ("city-primary", "青岛市第{n}实验小学"),
            ],
            SchoolKind.MIDDLE: [
                (None, f"{district}实验初级中学"),
                (None, f"{rng.choice(_UNIVERSITIES)}附属中学"),
                (None, f"{road}中学"),
            ],
            SchoolKind.HIGH: [("city-high", "青岛第{n}中学"), (None, f"{district}实验高级中学")],
            SchoolKind.VOCATIONAL: [
                (None, f"青岛{rng.choice(_VOCATIONAL_FIELDS)}职业学校"),
                (None, f"{district}职业教育中心学校"),
            ],
            SchoolKind.OTHER: [(None, f"{district}特殊教育学校"), (None, f"{district}{road}九年一贯制学校")],
        }
        candidates = options[kind]
        # Half the schools take a district-numbered name (第三小学), as most Chinese public schools have.
        if rng.random() < 0.5:
            candidates = []
        for counter, template in rng.sample(candidates, len(candidates)):
            candidate = template
            if counter is not None:
                candidate = template.format(n=chinese_number(self.counters.get(counter, 0) + 1))
            if candidate not in self.used:
                if counter is not None:
                    self._next(counter)
                self.used.add(candidate)
                return candidate
        suffix = {
            SchoolKind.KINDERGARTEN: "幼儿园",
            SchoolKind.PRIMARY: "小学",
            SchoolKind.MIDDLE: "中学",
            SchoolKind.HIGH: "高级中学",
            SchoolKind.VOCATIONAL: "职业学校",
            SchoolKind.OTHER: "学校",
        }[kind]
        while True:
            candidate = f"{district}第{chinese_number(self._next(district + suffix))}{suffix}"
            if candidate not in self.used:
                self.used.add(candidate)
                return candidate


def _schools(districts: int, schools: int, rng: random.Random) -> Iterator[_School]:
    namer = _Namer(rng)
    kinds, weights = list(KIND_WEIGHTS), list(KIND_WEIGHTS.values())
    index = 0
    for d in range(districts):
        code, district_name = (
            DISTRICTS[d] if d < len(DISTRICTS) else (f"3799{d:02d}", f"新区{chinese_number(d + 1)}")
        )
        # Spread evenly: the first (schools % districts) districts get one more.
        for seq in range(1, schools // districts + (1 if d < schools % districts else 0) + 1):
            kind = rng.choices(kinds, weights)[0]
            yield _School(
                district_code=code,
                district_name=district_name,
                code=f"{code}{seq:04d}",
                name=namer.name(kind, district_name),
                kind=kind,
                address=f"{district_name}{rng.choice(_ROADS)}{rng.randint(1, 300)}号",
                contact_name=rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN, k=rng.choice((1, 2)))),
                contact_phone=(
                    f"1{rng.choice('3578')}{rng.randrange(10**9):09d}"
                    if rng.random() < 0.7
                    else f"0532-8{rng.randrange(10**7):07d}"
                ),
                # A private /24 per school: 10.16.1.0/24, 10.16.2.0/24, ...
                subnet=f"10.{16 + index // 250}.{index % 250 + 1}",
                boarding=rng.random() < BOARDING_SHARE.get(kind, 0.0),
                water=rng.random() < WATER_SHARE,
                vendor="hikvision" if rng.random() < 0.6 else "dahua",
                via_nvr=rng.random() < 0.7,
                username=rng.choice(_USERNAMES),
                password="".join(rng.choices(_PASSWORD_CHARS, k=12)),
            )
            index += 1


def _scenes(school: _School) -> Iterator[tuple[SceneType, str, str]]:
    """(scene, camera name, location), most important first; names never repeat within a school."""
    kg = school.kind is SchoolKind.KINDERGARTEN
    yield SceneType.GATE, "南门", "校园南大门，朝向校外道路"
    yield SceneType.GATE, "北门", "北门（后勤通道）"
    yield SceneType.GUARD_POST, "门卫室", "南门门卫室"
    yield SceneType.PLAYGROUND, "户外活动场" if kg else "操场", "操场全景"
    yield SceneType.CANTEEN, "食堂操作间", "食堂一楼后厨"
    yield SceneType.PERIMETER, "东侧围墙", "东围墙沿线"
    if school.water:
        yield (
            SceneType.WATER,
            "游泳池" if school.kind in (SchoolKind.HIGH, SchoolKind.VOCATIONAL) else "景观水池",
            "校园水域",
        )
    if school.boarding:
        yield SceneType.DORMITORY, "男生宿舍楼门口", "男生宿舍楼一层出入口"
        yield SceneType.DORMITORY, "女生宿舍楼门口", "女生宿舍楼一层出入口"
    yield SceneType.CORRIDOR, "教学楼1层走廊", "教学楼一层"
    yield SceneType.PERIMETER, "西侧围墙", "西围墙沿线"
    yield SceneType.CANTEEN, "食堂就餐区", "食堂二楼"
    yield from _filler(school)


def _filler(school: _School) -> Iterator[tuple[SceneType, str, str]]:
    """Corridors and classrooms (and, for boarding schools, dormitory floors) in turn, then spare points."""
    grades = {
        SchoolKind.KINDERGARTEN: ("小", "中", "大"),
        SchoolKind.PRIMARY: ("一年级", "二年级", "三年级", "四年级", "五年级", "六年级"),
        SchoolKind.MIDDLE: ("初一", "初二", "初三"),
        SchoolKind.HIGH: ("高一", "高二", "高三"),
    }.get(school.kind, ("实训", "专业"))
    kg = school.kind is SchoolKind.KINDERGARTEN
    room = "活动室" if kg else "教室"
    classrooms = (
        (SceneType.CLASSROOM, f"{g}{chinese_number(c)}班{room}", f"{g}{chinese_number(c)}班")
        for c in range(1, 13)
        for g in grades
    )
    # Kindergartens are low buildings; schools have teaching, general and laboratory blocks.
    buildings, floors = (("教学楼", "园舍楼"), 3) if kg else (("教学楼", "综合楼", "实验楼"), 5)
    corridors = (
        (SceneType.CORRIDOR, f"{b}{f}层走廊", f"{b}{chinese_number(f)}层")
        for b in buildings
        for f in range(1, floors + 1)
        if (b, f) != ("教学楼", 1)
    )
    dorms = (
        (SceneType.DORMITORY, f"{b}宿舍楼{f}层走廊", f"{b}宿舍楼{chinese_number(f)}层")
        for f in range(1, 7)
        for b in ("男生", "女生")
    )
    sources = [corridors, classrooms, *([dorms] if school.boarding else [])]
    while sources:
        for source in list(sources):
            item = next(source, None)
            if item is None:
                sources.remove(source)
            else:
                yield item
    for name in ("东门", "西门"):
        yield SceneType.GATE, name, f"{name}出入口"
    n = 0
    while True:
        n += 1
        yield SceneType.OTHER, f"监控点{n}", "校园内"


def _urls(school: _School, index: int) -> tuple[str, str]:
    """Main and sub stream URLs of camera ``index`` (0-based) of ``school``."""
    if school.via_nvr or index >= 180:
        host, channel = f"{school.subnet}.{200 + index // NVR_CHANNELS}", index % NVR_CHANNELS + 1
    else:
        host, channel = f"{school.subnet}.{11 + index}", 1
    if school.vendor == "hikvision":
        base = f"rtsp://{host}:554/Streaming/Channels/{channel}"
        return f"{base}01", f"{base}02"
    base = f"rtsp://{host}:554/cam/realmonitor?channel={channel}"
    return f"{base}&subtype=0", f"{base}&subtype=1"


def generate_fleet(
    districts: int, schools: int, cameras_per_school: int, seed: int = 2026
) -> list[dict[str, str]]:
    """Rows of a fleet file: ``schools`` in total spread over ``districts``, ``cameras_per_school`` each.

    Same arguments, same rows. Raises :class:`ValueError` for counts out of range (every district needs a
    school; at most 99 districts, 9,999 schools per district and 1,000 cameras per school).
    """
    if not 1 <= districts <= MAX_DISTRICTS:
        raise ValueError(f"districts must be 1 to {MAX_DISTRICTS}")
    if not districts <= schools <= districts * MAX_SCHOOLS_PER_DISTRICT:
        raise ValueError(
            f"schools must be {districts} (one per district) to {districts * MAX_SCHOOLS_PER_DISTRICT}"
        )
    if not 1 <= cameras_per_school <= MAX_CAMERAS_PER_SCHOOL:
        raise ValueError(f"cameras per school must be 1 to {MAX_CAMERAS_PER_SCHOOL}")
    rng = random.Random(seed)  # noqa: S311 (demo data: the passwords protect nothing)
    rows: list[dict[str, str]] = []
    for school in _schools(districts, schools, rng):
        scenes = _scenes(school)
        for index in range(cameras_per_school):
            scene, name, location = next(scenes)
            main_url, sub_url = _urls(school, index)
            tags = [*SCENE_TAGS[scene], "海康" if school.vendor == "hikvision" else "大华"]
            row = {
                "district_code": school.district_code,
                "district_name": school.district_name,
                "school_code": school.code,
                "school_name": school.name,
                "school_kind": school.kind.value,
                "school_address": school.address,
                "contact_name": school.contact_name,
                "contact_phone": school.contact_phone,
                # GB/T 28181-style: the school's 10 digits, industry 00, type 132 (IP camera), serial.
                "camera_code": f"{school.code}00132{index + 1:05d}",
                "camera_name": name,
                "scene_type": scene.value,
                "main_url": main_url,
                # Some older cameras have no usable sub stream.
                "sub_url": sub_url if rng.random() >= 0.04 else "",
                "username": school.username,
                "password": school.password,
                "enabled": "false" if rng.random() < 0.015 else "true",
                "key_scene": "true" if scene in KEY_SCENES else "false",
                "tags": format_tags(tags),
                "location": location,
            }
            rows.append({c: row[c] for c in COLUMNS})
    return rows
