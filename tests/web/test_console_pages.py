"""The console's work pages (web/routers/console_pages.py): who may open which, the login redirect, no external
URL, both languages complete, the boot data's role flags, and the pages' ES modules (syntax, imports, message
keys)."""

from __future__ import annotations

import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.bureau import login
from web.i18n import LANGUAGES, catalogue

WEB = Path(__file__).resolve().parents[2] / "web"
STATIC = WEB / "static"
MODULES = (
    "pages_kit",
    "incidents",
    "tasks",
    "spot_checks",
    "hazards",
    "health_page",
    "reports",
    "admin",
    "notifications",
    "audit",
)
ADMIN_TABS = ("schools", "cameras", "users", "rules", "roster")
PAGES: dict[str, str] = {
    "/incidents": "incidents",
    "/tasks": "tasks",
    "/spot-checks": "spot_checks",
    "/hazards": "hazards",
    "/health": "health_page",
    "/reports": "reports",
    "/notifications": "notifications",
    "/audit": "audit",
    **{f"/admin/{tab}": "admin" for tab in ADMIN_TABS},
}
"""Each page and the module it loads."""
ALL = {"admin", "officer1", "leader1", "inspector", "school11", "auditor", "officer_d1"}
BUREAU_DUTY = {"admin", "officer1", "leader1"}
ALLOWED: dict[str, set[str]] = {
    "/incidents": ALL,
    "/tasks": BUREAU_DUTY | {"auditor", "officer_d1"},
    "/spot-checks": BUREAU_DUTY | {"inspector", "auditor", "officer_d1"},
    "/hazards": ALL,
    "/health": ALL,
    "/reports": BUREAU_DUTY | {"inspector", "auditor"},
    "/notifications": BUREAU_DUTY | {"auditor"},
    "/audit": {"admin", "auditor"},
    **{f"/admin/{tab}": {"admin"} for tab in ADMIN_TABS},
}
"""Who may open each page (the rest get 403): the navigation's roles, bureau-only pages for bureau scopes."""
NAV_PATH = {path: "/admin" if path.startswith("/admin/") else path for path in PAGES}
RAW_KEY = re.compile(
    r"\b(?:nav|role|scope|action|common|pg|inc|task|spot|hz|health|rep|admin|notif|audit)\.[a-z_]+(?:\.[a-z_]+)*\b"
)


class _Page(HTMLParser):
    """The visible text, the src/href URLs, the module scripts and the boot JSON of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.modules: list[str] = []
        self.text: list[str] = []
        self.boot = ""
        self._skip: str | None = None
        self._in_boot = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href", "action"):
            if values.get(name):
                self.urls.append(values[name] or "")
        if tag == "script":
            if values.get("type") == "module" and values.get("src"):
                self.modules.append(values["src"] or "")
            self._in_boot = values.get("id") == "cw-boot"
        if tag in ("script", "style"):
            self._skip = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == self._skip:
            self._skip = None
            self._in_boot = False

    def handle_data(self, data: str) -> None:
        if self._in_boot:
            self.boot += data
        elif self._skip is None:
            self.text.append(data)


def parse(html: str) -> _Page:
    parsed = _Page()
    parsed.feed(html)
    return parsed


def nav_links(html: str) -> set[str]:
    nav = re.search(r'<nav class="main".*?</nav>', html, re.S)
    assert nav is not None
    return set(re.findall(r'href="([^"]+)"', nav.group(0)))


def test_pages_need_a_login(api: TestClient) -> None:
    for path in [*PAGES, "/admin"]:
        response = api.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/login"


@pytest.mark.parametrize("username", sorted(ALL))
def test_who_may_open_which_page(api: TestClient, username: str) -> None:
    login(api, username)
    for path, module in PAGES.items():
        response = api.get(path)
        allowed = username in ALLOWED[path]
        links = nav_links(response.text)
        if allowed:
            assert response.status_code == 200, (username, path, response.text[:300])
            page = parse(response.text)
            assert f"/static/{module}.js" in page.modules
            assert NAV_PATH[path] in links
            assert 'aria-current="page"' in response.text
        else:
            assert response.status_code == 403, (username, path)
            assert 'data-testid="forbidden"' in response.text
            assert NAV_PATH[path] not in links, (username, path)
            assert f"/static/{module}.js" not in response.text


def test_admin_opens_on_its_first_tab(api: TestClient) -> None:
    login(api, "admin")
    response = api.get("/admin", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/schools"
    page = api.get("/admin/rules").text
    for tab in ADMIN_TABS:
        assert f'href="/admin/{tab}"' in page
    assert 'data-tab="rules"' in page
    assert api.get("/admin/nope").status_code == 404
    login(api, "officer1")
    assert api.get("/admin").status_code == 403


def test_no_external_url_and_every_asset_served(api: TestClient) -> None:
    login(api, "admin")
    seen: set[str] = set()
    for path in PAGES:
        page = parse(api.get(path).text)
        assert page.urls, path
        for url in page.urls:
            # Relative or same-origin only: no scheme, no protocol-relative "//host".
            assert not re.match(r"^(?:[a-z][a-z0-9+.-]*:|//)", url, re.I), (path, url)
            if url.startswith("/static/"):
                seen.add(url)
    assert "/static/pages.css" in seen
    for url in sorted(seen):
        assert api.get(url).status_code == 200, url
    for module in MODULES:
        source = (STATIC / f"{module}.js").read_text(encoding="utf-8")
        assert not re.search(r"""(?:from|import\(|fetch\()\s*["'`](?:https?:)?//""", source), module
        assert "innerHTML" not in source and "insertAdjacentHTML" not in source, module


@pytest.mark.parametrize("lang", LANGUAGES)
def test_both_languages_render_every_key(api: TestClient, lang: str) -> None:
    login(api, "admin")
    if lang != "zh-CN":
        switched = api.get("/lang/en", follow_redirects=False)
        assert switched.status_code == 303
    messages = catalogue()[lang]
    for path in PAGES:
        response = api.get(path)
        assert response.status_code == 200
        page = parse(response.text)
        visible = " ".join(page.text)
        assert not RAW_KEY.findall(visible), (path, RAW_KEY.findall(visible))
        boot = json.loads(page.boot.replace("<\\/", "</"))
        assert boot["lang"] == lang
        assert boot["messages"] == messages
    heading = parse(api.get("/incidents").text)
    assert ("Incidents" if lang == "en" else "事件上报") in " ".join(heading.text)


def _used_keys() -> dict[str, set[str]]:
    """Message keys the modules and templates name literally, and the prefixes label() completes."""
    keys: set[str] = set()
    prefixes: set[str] = set()
    sources = [STATIC / f"{m}.js" for m in MODULES]
    sources += [WEB / "templates" / f"{n}.html" for n in (*set(PAGES.values()), "forbidden", "health")]
    for path in sources:
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        keys.update(re.findall(r"""\bt\(\s*["']([a-z_.]+)["']""", text))
        prefixes.update(re.findall(r"""\blabel\(\s*["']([a-z_.]+)["']""", text))
    return {"keys": {k for k in keys if not k.endswith(".")}, "prefixes": prefixes}


def test_every_message_the_modules_use_exists_in_both_languages() -> None:
    used = _used_keys()
    assert len(used["keys"]) > 200
    for lang in LANGUAGES:
        messages = catalogue()[lang]
        missing = sorted(k for k in used["keys"] if k not in messages)
        assert not missing, (lang, missing)
        for prefix in used["prefixes"]:
            assert any(k.startswith(prefix + ".") for k in messages), (lang, prefix)
    zh, en = catalogue()["zh-CN"], catalogue()["en"]
    # The enumerations the pages show are all translated (a missing one would show the raw value).
    for prefix, values in {
        "inc.clock": ("school_phone", "school_written", "bureau_phone", "bureau_written"),
        "hz.status": ("open", "rectifying", "submitted", "closed"),
        "task.verdict": ("normal", "abnormal"),
        "health.fault": ("signal_loss", "black", "frozen", "blur", "occlusion", "too_dark", "too_bright"),
    }.items():
        for value in values:
            key = f"{prefix}.{value}"
            assert key in zh and key in en and zh[key] != en[key], key


def test_modules_parse_and_import_only_what_exists() -> None:
    exports: dict[str, set[str]] = {}
    for name in ("console", *MODULES):
        source = (STATIC / f"{name}.js").read_text(encoding="utf-8")
        exports[name] = set(re.findall(r"^export (?:async )?(?:function|const|class|let) (\w+)", source, re.M))
    for module in MODULES:
        path = STATIC / f"{module}.js"
        # --input-type=module: as the browser loads them (a plain --check of a .js file may not parse it as ESM).
        with path.open("rb") as stream:
            result = subprocess.run(
                ["node", "--input-type=module", "--check"],
                stdin=stream,
                capture_output=True,
                timeout=30,
                check=False,
            )
        assert result.returncode == 0, (module, result.stderr.decode())
        text = path.read_text(encoding="utf-8")
        for names, target in re.findall(r'import\s*\{([^}]*)\}\s*from\s*"/static/(\w+)\.js"', text):
            assert target in exports, (module, target)
            for name in (n.strip() for n in names.split(",")):
                if name:
                    assert name in exports[target], (module, target, name)


def test_a_broken_module_fails_the_syntax_check(tmp_path: Path) -> None:
    broken = tmp_path / "broken.js"
    broken.write_text('import { t } from "/static/console.js";\nconst x = ;\n', encoding="utf-8")
    with broken.open("rb") as stream:
        result = subprocess.run(
            ["node", "--input-type=module", "--check"], stdin=stream, capture_output=True, timeout=30, check=False
        )
    assert result.returncode != 0


def _boot(api: TestClient, path: str) -> dict[str, object]:
    response = api.get(path)
    assert response.status_code == 200
    boot: dict[str, object] = json.loads(parse(response.text).boot.replace("<\\/", "</"))
    return boot


def test_pages_offer_what_the_role_may_do(api: TestClient) -> None:
    expected = {
        "officer1": {
            "/incidents": {"duty": True, "close_major": False},
            "/hazards": {"file": True, "rectify": True, "verify": False, "reopen": True, "work": True},
            "/tasks": {"verdict": True},
            "/spot-checks": {"inspect": False, "admin": False},
            "/reports": {"generate": True},
            "/notifications": {"test": False},
        },
        "leader1": {
            "/incidents": {"duty": True, "close_major": True},
            "/hazards": {"file": True, "rectify": True, "verify": True, "reopen": True, "work": True},
            "/spot-checks": {"inspect": True, "admin": False},
        },
        "school11": {
            "/incidents": {"duty": False, "close_major": False},
            "/hazards": {"file": False, "rectify": True, "verify": False, "reopen": False, "work": True},
        },
        "auditor": {
            "/hazards": {"file": False, "rectify": False, "verify": False, "reopen": False, "work": False},
            "/tasks": {"verdict": False},
            "/reports": {"generate": False},
        },
        "inspector": {"/spot-checks": {"inspect": True, "admin": False}},
        "admin": {"/spot-checks": {"inspect": True, "admin": True}, "/notifications": {"test": True}},
    }
    for username, pages in expected.items():
        login(api, username)
        for path, can in pages.items():
            boot = _boot(api, path)
            assert boot["can"] == can, (username, path)
            user = boot["user"]
            assert isinstance(user, dict) and user["username"] == username
    login(api, "school11")
    assert _boot(api, "/hazards")["bureau_scope"] is False
    login(api, "auditor")
    actions = _boot(api, "/audit")["actions"]
    assert isinstance(actions, list) and "config.change" in actions and "live.view" in actions


def test_schools_page_still_renders_with_health_script(api: TestClient) -> None:
    login(api, "officer1")
    response = api.get("/")
    assert response.status_code == 200
    assert "S11-GATE" in response.text
    assert "/static/health.js" in response.text
