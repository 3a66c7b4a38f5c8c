"""mpg report in a real browser: headless Chromium loads the page from a file:// URL, screenshots it, logs nothing.

Skipped when /usr/bin/chromium is absent (``.ci/run`` installs it from the Debian packages). The PNG is
read with the standard library only (zlib; no Pillow).
"""

from __future__ import annotations

import struct
import subprocess
import zlib
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 1280, 2000
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="headless Chromium is not installed at /usr/bin/chromium "
                                "(apt-get install -y chromium; .ci/run does this)")


def read_png(path: Path) -> tuple[int, int, int, list[bytes]]:
    """(width, height, bytes per pixel, unfiltered rows) of an 8-bit, non-interlaced PNG (PNG spec §9 filters)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    assert ihdr is not None
    w, h, depth, ctype, _, _, interlace = ihdr
    assert depth == 8 and interlace == 0 and ctype in (2, 6), ihdr
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    assert len(raw) == h * (stride + 1), "truncated image data"
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif f == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif f == 3:
            for i in range(stride):
                line[i] = (line[i] + ((line[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 255
        elif f == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                           *extra, url], capture_output=True, text=True, timeout=180)


def console_lines(stderr: str) -> list[str]:
    """Chromium's console messages (errors, CSP violations, uncaught exceptions) in its stderr log."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def report_file(tmp_path_factory) -> Path:
    """A real report (llama3-70b on 512 H100s), written by the CLI."""
    from typer.testing import CliRunner

    from mpg_cli.cli import app

    out = tmp_path_factory.mktemp("browser") / "plan.html"
    res = CliRunner(env={"NO_COLOR": "1", "MPG_PRESETS": None}).invoke(
        app, ["report", "-m", "llama3-70b", "-c", "dgx-h100", "-n", "512", "--tokens", "15T", "-o", str(out)])
    assert res.exit_code == 0, res.stderr
    return out


def test_console_check_catches_errors(tmp_path):
    """The console check can fail: a page with an inline script and a remote image logs CSP/console errors."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><head><meta http-equiv='Content-Security-Policy' content=\"default-src "
                   "'none'\"></head><body><script>console.error('x')</script><img src='http://example.com/x.png'>"
                   "</body></html>", encoding="utf-8")
    res = chromium(bad.as_uri(), tmp_path / "profile", "--dump-dom")
    assert len(console_lines(res.stderr)) >= 1, res.stderr[-2000:]


def test_report_renders_in_headless_chromium(report_file, tmp_path):
    """file:// load: a 1280×2000 screenshot that is not blank and shows the charts' colours; no console errors."""
    shot = tmp_path / "shot.png"
    res = chromium(report_file.as_uri(), tmp_path / "profile", f"--screenshot={shot}",
                   f"--window-size={WIDTH},{HEIGHT}")
    assert shot.exists(), res.stderr[-3000:]
    assert console_lines(res.stderr) == [], console_lines(res.stderr)
    w, h, bpp, rows = read_png(shot)
    assert (w, h) == (WIDTH, HEIGHT)
    pixels = [row[i:i + 3] for row in rows[::4] for i in range(0, len(row), bpp * 4)]
    white = sum(1 for p in pixels if p == b"\xff\xff\xff")
    assert 0.02 < 1 - white / len(pixels) < 0.9, f"{1 - white / len(pixels):.1%} non-white"
    assert len(set(pixels)) > 50  # text anti-aliasing and chart colours, not one flat colour
    okabe_blue, okabe_green = bytes((0x00, 0x72, 0xB2)), bytes((0x00, 0x9E, 0x73))
    assert sum(p == okabe_blue for p in pixels) > 100 and sum(p == okabe_green for p in pixels) > 50


def test_report_dom_has_every_chart(report_file, tmp_path):
    """--dump-dom: the parsed page holds every section and six inline SVG charts, and logs no console message."""
    res = chromium(report_file.as_uri(), tmp_path / "profile", "--dump-dom")
    assert res.returncode == 0, res.stderr[-3000:]
    assert console_lines(res.stderr) == []
    dom = res.stdout
    for sid in ("memory", "step-time", "scaling", "frontier", "accuracy", "assumptions"):
        assert f'id="{sid}"' in dom, sid
    assert dom.count("<svg ") == 6 and "Training plan: llama3-70b" in dom


def test_report_prints_to_a_few_pdf_pages(report_file, tmp_path):
    """--print-to-pdf (the @media print / @page A4 rules): a PDF of 2-8 pages, no console message."""
    import re

    pdf = tmp_path / "plan.pdf"
    res = chromium(report_file.as_uri(), tmp_path / "profile", "--no-pdf-header-footer", f"--print-to-pdf={pdf}")
    assert pdf.exists(), res.stderr[-3000:]
    assert console_lines(res.stderr) == []
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    assert 2 <= pages <= 8, pages
