"""Cisco IP phone XML objects: immutable values that keep the phones' rules,
a writer that emits only what the phones read, and a hardened parser (no
DTDs or entities; size, depth and element count bounded before and while
building) for the emulated phones.

>>> from phonecast.ciscoxml import Execute, Text, parse, to_xml
>>> body = to_xml(Text(title="Facilities", text="Fire drill at 10:00"))
>>> parse(body).text
'Fire drill at 10:00'
>>> [(i.url, i.priority) for i in Execute.of("http://h/a.xml", "Key:Services", priority=1).items]
[('http://h/a.xml', 1), ('Key:Services', 0)]
"""

from phonecast.ciscoxml._schema import pack_pixels, unpack_pixels
from phonecast.ciscoxml.errors import (
    AUTHENTICATION_ERROR,
    FRAMING_ERROR,
    INTERNAL_FILE_ERROR,
    PARSE_ERROR,
    CiscoXmlError,
    ForbiddenXmlError,
    InvalidObjectError,
    InvalidUriError,
    UndefinedElementError,
    XmlLimitError,
    XmlSyntaxError,
)
from phonecast.ciscoxml.items import (
    DirectoryEntry,
    ExecuteItem,
    IconFileItem,
    IconItem,
    InputItem,
    MenuItem,
    ResponseItem,
    SoftKeyItem,
)
from phonecast.ciscoxml.objects import (
    OBJECT_CLASSES,
    CiscoObject,
    Directory,
    Error,
    Execute,
    IconFileMenu,
    IconMenu,
    Image,
    ImageFile,
    Input,
    Menu,
    Response,
    Status,
    StatusFile,
    Text,
    check_family,
    iter_urls,
)
from phonecast.ciscoxml.parser import MAX_BYTES, MAX_DEPTH, MAX_ELEMENTS, parse, parse_execute
from phonecast.ciscoxml.uris import (
    InternalUri,
    PhoneFamily,
    UriKind,
    check_uri,
    classify_uri,
    is_http_url,
)
from phonecast.ciscoxml.writer import CONTENT_TYPE, escape_attribute, escape_text, to_xml

__all__ = [
    "AUTHENTICATION_ERROR",
    "CONTENT_TYPE",
    "FRAMING_ERROR",
    "INTERNAL_FILE_ERROR",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_ELEMENTS",
    "OBJECT_CLASSES",
    "PARSE_ERROR",
    "CiscoObject",
    "CiscoXmlError",
    "Directory",
    "DirectoryEntry",
    "Error",
    "Execute",
    "ExecuteItem",
    "ForbiddenXmlError",
    "IconFileItem",
    "IconFileMenu",
    "IconItem",
    "IconMenu",
    "Image",
    "ImageFile",
    "Input",
    "InputItem",
    "InternalUri",
    "InvalidObjectError",
    "InvalidUriError",
    "Menu",
    "MenuItem",
    "PhoneFamily",
    "Response",
    "ResponseItem",
    "SoftKeyItem",
    "Status",
    "StatusFile",
    "Text",
    "UndefinedElementError",
    "UriKind",
    "XmlLimitError",
    "XmlSyntaxError",
    "check_family",
    "check_uri",
    "classify_uri",
    "escape_attribute",
    "escape_text",
    "is_http_url",
    "iter_urls",
    "pack_pixels",
    "parse",
    "parse_execute",
    "to_xml",
    "unpack_pixels",
]
