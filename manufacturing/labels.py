"""A bag label's machine-readable code: a QR code (segno) as inline SVG, so the print page needs no image files."""

import segno


def label_svg(content: str) -> str:
    # Error correction "M" survives a smudge or a crease on a frozen bag; the quiet zone is segno's default.
    return segno.make(content, error="m").svg_inline(scale=4, title=content)
