"""Hypothesis strategies for valid Cisco IP phone objects, every kind.

Text excludes CR on purpose: XML parsers read CR LF and lone CR as LF, so a
CR cannot survive a round trip through element text (test_writer checks
that behaviour on its own).  Attribute values keep CR: the writer escapes it.
"""

from __future__ import annotations

from hypothesis import strategies as st

from phonecast.ciscoxml import (
    CiscoObject,
    Directory,
    DirectoryEntry,
    Error,
    Execute,
    ExecuteItem,
    IconFileItem,
    IconFileMenu,
    IconItem,
    IconMenu,
    Image,
    ImageFile,
    Input,
    InputItem,
    Menu,
    MenuItem,
    Response,
    ResponseItem,
    SoftKeyItem,
    Status,
    StatusFile,
    Text,
)

_CHARS = st.characters(
    exclude_categories=("Cs", "Cc"),
    include_characters="\t\n",
    exclude_characters="\ufffe\uffff",
)
#: Text a phone shows: any character but controls (tab and LF allowed),
#: XML specials included so escaping is always exercised.
texts = st.text(st.one_of(_CHARS, st.sampled_from("&<>\"' ")), max_size=40)
short = st.text(st.one_of(_CHARS, st.sampled_from("&<>\"'")), max_size=64)
optional = st.none() | texts

_URL_CHARS = st.sampled_from(list("abcXYZ019-._~/?#[]@!$&'()*+,;=%<>\"é"))
http_urls = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}{port}/{path}",
    st.sampled_from(["http", "https", "HTTP"]),
    st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,10}[a-z0-9])?", fullmatch=True),
    st.just("") | st.integers(1, 65535).map(lambda port: f":{port}"),
    st.text(_URL_CHARS, max_size=20),
)
EXECUTABLE_URIS = [
    "Key:Services",
    "Key:Line1",
    "Init:CallHistory",
    "Dial:1234",
    "Dial:*99#,,12:1:app:0",
    "EditDial:5551000",
    "Play:Chirp1.raw",
    "Display:On:10",
    "Display:Off:0",
    "Display:Default",
    "QueryStringParam:id=1&x=<y>",
    "RTPRx:10.0.0.1:20480:50",
    "RTPRx:Stop",
    "RTPTx:192.0.2.9:32768",
    "RTPMRx:239.1.2.3:20482",
    "RTPMTx:239.1.2.3:20484",
    "SendDigits:123#",
]
SCREEN_ONLY_URIS = ["SoftKey:Exit", "SoftKey:<<", "Notify:http:host:8080:path"]
internal_uris = st.sampled_from(EXECUTABLE_URIS)
urls = st.one_of(http_urls, internal_uris, st.sampled_from(SCREEN_ONLY_URIS))
optional_urls = st.just("") | urls


@st.composite
def softkey_tuples(draw: st.DrawFn, max_size: int = 4) -> tuple[SoftKeyItem, ...]:
    """Soft keys at distinct positions (or left to the phone)."""
    positions = draw(st.lists(st.integers(1, 16), unique=True, max_size=max_size))
    keys = []
    for position in positions:
        keys.append(
            SoftKeyItem(
                draw(short),
                draw(optional_urls),
                draw(st.none() | urls),
                draw(st.sampled_from([position, None])),
            )
        )
    return tuple(keys)


softkeys = softkey_tuples()
menu_items = st.builds(MenuItem, short, optional_urls)
input_items = st.builds(
    InputItem,
    texts,
    st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True),
    texts,
    st.sampled_from([t + p for t in "ATNEUL" for p in ("", "P")]),
)
entries = st.builds(DirectoryEntry, short, st.from_regex(r"\+?[0-9 ]{1,15}", fullmatch=True))


@st.composite
def pixels(draw: st.DrawFn, max_w: int, max_h: int) -> tuple[int, int, int, str]:
    """``(width, height, depth, data)`` with data of exactly the right length."""
    width = draw(st.integers(1, max_w))
    height = draw(st.integers(1, max_h))
    depth = draw(st.sampled_from([1, 2]))
    size = (width * height * depth + 7) // 8
    data = draw(st.binary(min_size=size, max_size=size)).hex()
    return width, height, depth, draw(st.sampled_from([data, data.upper()]))


@st.composite
def icon_menus(draw: st.DrawFn) -> IconMenu:
    indexes = draw(st.lists(st.integers(0, 9), unique=True, max_size=4))
    icons = tuple(IconItem(i, *draw(pixels(16, 10))) for i in indexes)
    refs = st.none() | (st.sampled_from(indexes) if indexes else st.none())
    items = draw(st.lists(st.builds(MenuItem, short, optional_urls, refs), max_size=5))
    return IconMenu(draw(optional), draw(optional), draw(softkeys), tuple(items), icons)


@st.composite
def icon_file_menus(draw: st.DrawFn) -> IconFileMenu:
    indexes = draw(st.lists(st.integers(0, 9), unique=True, max_size=4))
    icons = tuple(IconFileItem(i, draw(http_urls)) for i in indexes)
    refs = st.none() | (st.sampled_from(indexes) if indexes else st.none())
    items = draw(st.lists(st.builds(MenuItem, short, optional_urls, refs), max_size=5))
    return IconFileMenu(draw(optional), draw(optional), draw(softkeys), tuple(items), icons)


@st.composite
def images(draw: st.DrawFn) -> Image:
    width, height, depth, data = draw(pixels(133, 65))
    x = draw(st.integers(-1, 132))
    y = draw(st.integers(-1, 64))
    return Image(draw(optional), draw(optional), draw(softkeys), x, y, width, height, depth, data)


@st.composite
def statuses(draw: st.DrawFn) -> Status:
    image = draw(st.none() | pixels(133, 65))
    where = st.none() | st.integers(-1, 500)
    timer = draw(st.none() | st.integers(0, 86400))
    if image is None:
        return Status(draw(texts), timer, draw(where), draw(where))
    return Status(draw(texts), timer, draw(where), draw(where), *image)


@st.composite
def executes(draw: st.DrawFn) -> Execute:
    count = draw(st.integers(1, 3))
    http_at = draw(st.none() | st.integers(0, count - 1))
    items = []
    for n in range(count):
        url = draw(http_urls) if n == http_at else draw(internal_uris)
        items.append(ExecuteItem(url, draw(st.integers(0, 2))))
    return Execute(tuple(items))


attribute_texts = st.text(st.one_of(_CHARS, st.sampled_from("&<>\"'\r\t\n ")), max_size=30)

OBJECTS: st.SearchStrategy[CiscoObject] = st.one_of(
    st.builds(Text, optional, optional, softkeys, texts),
    st.builds(Menu, optional, optional, softkeys, st.lists(menu_items, max_size=8).map(tuple)),
    icon_menus(),
    icon_file_menus(),
    st.builds(
        Input,
        optional,
        optional,
        softkeys,
        http_urls,
        st.lists(input_items, max_size=5).map(tuple),
    ),
    st.builds(Directory, optional, optional, softkeys, st.lists(entries, max_size=8).map(tuple)),
    images(),
    st.builds(
        ImageFile,
        optional,
        optional,
        softkeys,
        st.integers(-1, 400),
        st.integers(-1, 400),
        http_urls,
    ),
    statuses(),
    st.builds(
        StatusFile,
        texts,
        st.none() | st.integers(0, 999),
        st.none() | st.integers(-1, 300),
        st.none() | st.integers(-1, 300),
        http_urls,
    ),
    executes(),
    st.builds(
        Response,
        st.lists(
            st.builds(
                ResponseItem, st.integers(-(2**31), 2**31 - 1), attribute_texts, attribute_texts
            ),
            max_size=3,
        ).map(tuple),
    ),
    st.builds(Error, st.integers(1, 4), texts),
)
