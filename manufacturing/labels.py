"""A bag label's machine-readable code: a QR code (segno) as inline SVG, so the print page needs no image files."""

import segno
from django.utils.safestring import SafeString, mark_safe


def label_svg(content: str) -> SafeString:
    # Error correction "M" survives a smudge or a crease on a frozen bag; the quiet zone is segno's default.
    # Safe to render as it is: the content becomes path data, and segno XML-escapes the title it is given.
    return mark_safe(segno.make(content, error="m").svg_inline(scale=4, title=content))
