"""Reading a page and its scripts as text: the forms Vite writes, escapes, hostile text.

The snippets are written here in the forms the upstream bundle takes (see the module
docstring of ``langchain_gprochat._bundle``), with names of our own.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from langchain_gprochat._bundle import (
    HistoryLimit,
    find_history_limits,
    find_signing_keys,
    js_parse_int,
    js_unescape,
    parse_page,
    static_imports,
)
from langchain_gprochat.server.page import template_literal_text

SIGNER = (
    "async function h(s){return s}const sign=async p=>{const{t:x,m:y}=p,k={body};return await h(k)}"
)


def signer(body: str) -> str:
    return SIGNER.replace("{body}", body)


# -- the signing key -------------------------------------------------------------------


def test_a_key_inlined_in_the_template_literal_is_read_as_it_is() -> None:
    found = find_signing_keys(signer("`${x}:${y}:0C2F-ab_91`"))
    assert [(k.key, k.near_signing_names) for k in found] == [("0C2F-ab_91", True)]


def test_escapes_in_the_key_are_undone_as_javascript_does() -> None:
    raw = r"q\"s'\\b\`\${v}<\/script>é🌍\u00e9\u{1F30D}\x41\t"
    assert [k.key for k in find_signing_keys(signer(f"`${{x}}:${{y}}:{raw}`"))] == [
        "q\"s'\\b`${v}</script>é🌍é🌍A\t"
    ]


def test_an_empty_inlined_key_is_the_empty_key() -> None:
    assert [k.key for k in find_signing_keys(signer("`${x}:${y}:`"))] == [""]


def test_no_key_set_reads_the_fallback_of_the_unset_variable() -> None:
    code = 'const sign=async p=>{const{t:x,m:y}=p,n={}.PUBLIC_SECRET_KEY||"",k=`${x}:${y}:${n}`;}'
    assert [k.key for k in find_signing_keys(code)] == [""]
    other = code.replace("{}.PUBLIC_SECRET_KEY", "({}).PUBLIC_SECRET_KEY").replace('""', '"fb"')
    assert [k.key for k in find_signing_keys(other)] == ["fb"]


def test_a_name_assigned_a_plain_string_is_read() -> None:
    code = "const n='s3cr\\'et',k=`${x}:${y}:${n}`;"
    assert [k.key for k in find_signing_keys(code)] == ["s3cr'et"]


def test_a_key_computed_at_run_time_is_reported_as_unreadable() -> None:
    code = "const n=atob(window.K),k=`${x}:${y}:${n}`;"
    found = find_signing_keys(code)
    assert [(k.key, k.offset) for k in found] == [(None, code.index("`"))]


def test_other_template_literals_are_not_signing_code() -> None:
    code = "a=`${x}:${y}`;b=`${x}-${y}:z`;c=`circle(${r}px at ${x}px ${y}px)`;d=`${x}:${y}:${z}-w`"
    assert find_signing_keys(code) == []


def test_a_literal_far_from_signing_names_is_marked_so() -> None:
    code = "x".join(["render()"] * 200) + "q=`${a}:${b}:k`"
    assert [(k.key, k.near_signing_names) for k in find_signing_keys(code)] == [("k", False)]


@given(st.text())
def test_the_local_pages_escaping_reads_back_as_the_key(key: str) -> None:
    code = f"return sha256Hex(`${{t}}:${{m}}:{template_literal_text(key)}`);"
    found = find_signing_keys(code)
    assert len(found) == 1
    assert found[0].key == key


# -- the history limit ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ('g=parseInt("12");q=l.map(v).slice(-g)', [HistoryLimit(12, "12")]),
        (
            'g=parseInt({}.PUBLIC_MAX_HISTORY_MESSAGES||"99");q=l.slice(-g)',
            [HistoryLimit(99, "99")],
        ),
        (
            'g=parseInt(({}).PUBLIC_MAX_HISTORY_MESSAGES||"9");q=l.slice( - g )',
            [HistoryLimit(9, "9")],
        ),
        ('g=parseInt(" 7 msgs");q=l.slice(-g)', [HistoryLimit(7, " 7 msgs")]),
        ('g=parseInt("many");q=l.slice(-g)', [HistoryLimit(None, "many")]),
        ('g=parseInt("0");q=l.slice(-g)', [HistoryLimit(None, "0")]),
        ("export const maxHistoryMessages = 13;", [HistoryLimit(13, "13")]),
        ('const maxHistoryMessages = parseInt("4")', [HistoryLimit(4, "4")]),
        ('g=parseInt("12");q=l.slice(-2)', []),  # not what the history is sliced with
        ("g=parseInt(e.slice(a+1,a+3),16);q=l.slice(-g)", []),
        ("maxHistoryMessages = 1.5", []),
    ],
)
def test_history_limit_forms(code: str, expected: list[HistoryLimit]) -> None:
    assert find_history_limits(code) == expected


@pytest.mark.parametrize(
    ("text", "value"),
    [("12", 12), ("  +3x", 3), ("-4", -4), ("", None), ("x1", None), ("٣", None), ("0012", 12)],
)
def test_js_parse_int(text: str, value: int | None) -> None:
    assert js_parse_int(text) == value


def test_js_unescape_line_breaks_and_pairs() -> None:
    assert js_unescape("a\r\nb\rc\\\nd") == "a\nb\ncd"
    assert js_unescape(r"\uD83C\uDF0D") == "🌍"
    assert js_unescape(r"\uD800") == "\ud800"
    assert js_unescape(r"\q\0\v") == "q\0\v"


# -- the page and its imports ---------------------------------------------------------


PAGE = """<!DOCTYPE html><html><head>
<meta charset="UTF-8"><meta name="generator" content="Astro v9.9.9">
<title>  My   Chat </title>
<script type="module" src="/_x/hoisted.1.js"></script>
<link rel="modulepreload" href="./pre.js">
<script src="https://cdn.example/lib.js" defer></script>
<script>window.a = 1</script>
<script type="application/ld+json">{"not": "code"}</script>
</head><body>
<astro-island component-url="/_x/Island.2.js" renderer-url="/_x/client.3.js"
  before-hydration-url="/_x/before.4.js" props="{}"></astro-island>
<astro-island component-url="/_x/Island.2.js" renderer-url="/_x/client.3.js"></astro-island>
<script type="module">import "/_x/inline-import.js"</script>
</body></html>"""


def test_parse_page_orders_the_scripts_most_likely_signing_code_first() -> None:
    page = parse_page(PAGE, "http://h:1/sub/page")
    assert page.scripts == (
        "http://h:1/_x/Island.2.js",
        "http://h:1/sub/pre.js",
        "http://h:1/_x/hoisted.1.js",
        "http://h:1/_x/client.3.js",
        "http://h:1/_x/before.4.js",
        "https://cdn.example/lib.js",
    )
    assert page.inline == ("window.a = 1", 'import "/_x/inline-import.js"')
    assert (page.title, page.generator, page.application_name, page.version) == (
        "My Chat",
        "Astro v9.9.9",
        None,
        None,
    )


def test_parse_page_honours_base_and_reads_app_name_and_version() -> None:
    html = (
        '<base href="/app/"><meta name="application-name" content="GPROChat">'
        '<meta name="version" content="1.2.3"><script type="module" src="m.js"></script>'
    )
    page = parse_page(html, "https://h/x/y")
    assert (page.scripts, page.application_name, page.version) == (
        ("https://h/app/m.js",),
        "GPROChat",
        "1.2.3",
    )


@pytest.mark.parametrize("html", ["", "<html", "<<<>>>", "\x00" * 50, "<script src>", "<title>"])
def test_parse_page_survives_broken_html(html: str) -> None:
    page = parse_page(html, "http://h/")
    assert page.scripts == ()


def test_static_imports_forms_and_junk() -> None:
    code = (
        'import{a as b,c}from"./web.1.js";import"./side.js";export*from"/abs.js";'
        "const m=import('../up.js');import * as ns from './ns.js';"
        'kw=["import","from","eval"];import{x}from"solid-js";u="import(\\"//evil/x.js\\")";'
        'import{y}from"https://other.example/y.js"'
    )
    assert static_imports(code, "http://h/_x/chunk.js") == [
        "http://h/_x/web.1.js",
        "http://h/_x/side.js",
        "http://h/abs.js",
        "http://h/up.js",
        "http://h/_x/ns.js",
        "https://other.example/y.js",
    ]
