"""QR code transport: an opaque message as one or more QR codes, and back.

Theory of operation: this module owns three things and must never know what the message
means (no CBOR, no COSE, no keys; the bytes are opaque and validated by the protocol layer).

1. *The frame codec* (pure, no images). A message is cut into at most :data:`MAX_FRAMES`
   chunks of at most ``budget`` bytes (default :data:`FRAME_BUDGET`), split evenly so every
   code has about the same size. Each chunk is prefixed by a 13-byte header, also when there
   is a single frame, so a reader has one format to parse::

       offset size field
       0      2    magic   b"OC" (0x4F 0x43)
       2      1    version 0x01 (FRAME_VERSION)
       3      1    number  1..total, 1-based position of this chunk
       4      1    total   1..255, number of frames of the message
       5      8    digest  first 8 bytes of SHA-256(whole message)
       13     n    chunk   n >= 1 bytes of the message

   The digest groups frames by message (frames of two messages are never mixed) and checks
   the reassembled message (a frame altered or substituted is detected). Frames may arrive in
   any order and repeatedly, as from a camera watching a looping display; see
   :class:`FrameAssembler`.
2. *Rendering*: each frame is a QR code in byte mode at error correction level M (15%
   recovery: the usual compromise between density and tolerance to glare, blur and a phone
   screen's moire; L saves ~20% but fails more often on camera capture, Q/H cost 1-4 more
   versions), made by zxing-cpp's writer (which chooses the version and the mask, in C++:
   choosing the mask is most of a QR encoder's work, several times segno's whole cost in
   Python). Several codes are composed into one grid image with pillow, or drawn with
   Unicode half blocks for a terminal.
3. *Reading*: zxing-cpp finds every QR code in an image and returns its raw bytes
   (``Barcode.bytes``, no text transcoding). Codes that are not offcash frames (a URL QR
   in the same photo) are ignored as long as at least one offcash frame is present.

The default budget of 1000 bytes per frame keeps every code at version 26-M or smaller
(121x121 modules): a 300-700 byte signed message is one code, a post-quantum 8 KB message is
9 codes. A version 40-L code holds 2,953 bytes but its 177x177 modules are hard to scan
from a phone screen.

Every failure to read is a :class:`QrError` (a :class:`~offcash.errors.TransportError`);
writing problems are ``ValueError`` (caller errors) or ``OSError`` (local file system).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

import zxingcpp
from PIL import Image, ImageOps

from offcash.errors import TransportError
from offcash.transports._atomic import atomic_write

__all__ = [
    "DEFAULT_SCALE",
    "DIGEST_SIZE",
    "ERROR_LEVEL",
    "FRAME_BUDGET",
    "FRAME_MAGIC",
    "FRAME_VERSION",
    "HEADER_SIZE",
    "MAX_FRAMES",
    "MAX_IMAGE_PIXELS",
    "ConflictingFrames",
    "CorruptMessage",
    "Frame",
    "FrameAssembler",
    "ImageError",
    "MalformedFrame",
    "MissingFrames",
    "MixedFrames",
    "NoFrames",
    "NoQrCode",
    "QrError",
    "decode_frames",
    "decode_image",
    "encode_frames",
    "parse_frame",
    "read_images",
    "read_png",
    "render_frame_images",
    "render_image",
    "render_png",
    "render_terminal",
    "scan_image",
    "write_png",
]

#: First two bytes of every frame.
FRAME_MAGIC: Final = b"OC"
#: Frame format version (byte 2).
FRAME_VERSION: Final = 1
#: Length of the truncated SHA-256 of the whole message carried by every frame.
DIGEST_SIZE: Final = 8
_HEADER: Final = struct.Struct(f">2sBBB{DIGEST_SIZE}s")
#: Bytes of header in front of every chunk.
HEADER_SIZE: Final = _HEADER.size
#: Default largest chunk of message per frame (frame <= 1013 bytes: QR version <= 26-M).
FRAME_BUDGET: Final = 1000
#: Largest frame count (the ``total`` field is one byte).
MAX_FRAMES: Final = 255
#: QR error correction level.
ERROR_LEVEL: Final = "M"
#: Largest frame a single code holds at level M (version 40-M, byte mode).
_MAX_FRAME_BYTES: Final = 2331
#: Default pixels per QR module in images.
DEFAULT_SCALE: Final = 4
#: Quiet zone around each code in images, in modules (the QR specification's 4).
_IMAGE_BORDER: Final = 4
#: Largest image read or written (pixels); 255 frames at the default scale fit.
MAX_IMAGE_PIXELS: Final = 80_000_000


class QrError(TransportError):
    """QR codes or frames could not be read as an offcash message."""

    code = "transport-qr"


class MalformedFrame(QrError):
    """A frame is not an offcash frame or its header is invalid."""

    code = "transport-malformed-frame"


class NoFrames(QrError):
    """No frame at all was given."""

    code = "transport-no-frames"


class NoQrCode(NoFrames):
    """An image contains no readable QR code."""

    code = "transport-no-qr-code"


class MissingFrames(QrError):
    """Some frames of a multi-frame message were not seen; ``missing`` lists them (1-based)."""

    code = "transport-missing-frames"

    def __init__(self, missing: Sequence[int], total: int) -> None:
        numbers = ", ".join(str(n) for n in missing)
        plural = "s" if len(missing) > 1 else ""
        super().__init__(
            f"missing frame{plural} {numbers} of {total}; scan or supply the missing code{plural}"
        )
        self.missing = tuple(missing)
        self.total = total


class MixedFrames(QrError):
    """Frames of different messages were given together."""

    code = "transport-mixed-frames"


class ConflictingFrames(MixedFrames):
    """Two frames claim the same position of the same message with different content."""

    code = "transport-conflicting-frames"


class CorruptMessage(QrError):
    """All frames are present but the reassembled message does not match their digest."""

    code = "transport-corrupt-message"


class ImageError(QrError):
    """An image file is missing, unreadable, not an image, or too large."""

    code = "transport-image"


@dataclass(frozen=True, slots=True)
class Frame:
    """One parsed frame: position ``number`` (1-based) of ``total``, and its chunk."""

    number: int
    total: int
    digest: bytes
    chunk: bytes

    def to_bytes(self) -> bytes:
        """Serialize the frame (header + chunk)."""
        return _HEADER.pack(FRAME_MAGIC, FRAME_VERSION, self.number, self.total, self.digest) + (
            self.chunk
        )


# --------------------------------------------------------------------------- frame codec


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()[:DIGEST_SIZE]


def encode_frames(data: bytes, *, budget: int = FRAME_BUDGET) -> list[bytes]:
    """Split ``data`` into frames of at most ``budget`` message bytes each (plus the header).

    Chunks are balanced (sizes differ by at most one byte). Raises ``ValueError`` for an
    empty message, a budget outside ``1..2318``, or a message needing more than 255 frames.
    """
    data = bytes(data)
    if not data:
        raise ValueError("cannot encode an empty message")
    if not 1 <= budget <= _MAX_FRAME_BYTES - HEADER_SIZE:
        raise ValueError(f"frame budget must be 1..{_MAX_FRAME_BYTES - HEADER_SIZE}, not {budget}")
    total = math.ceil(len(data) / budget)
    if total > MAX_FRAMES:
        raise ValueError(
            f"message of {len(data)} bytes needs {total} frames of {budget} bytes; "
            f"at most {MAX_FRAMES} are possible"
        )
    digest = _digest(data)
    base, extra = divmod(len(data), total)
    frames: list[bytes] = []
    start = 0
    for index in range(total):
        size = base + (1 if index < extra else 0)
        frames.append(Frame(index + 1, total, digest, data[start : start + size]).to_bytes())
        start += size
    return frames


def parse_frame(frame: bytes) -> Frame:
    """Parse one frame; raises :class:`MalformedFrame` when it is not a valid offcash frame."""
    if not isinstance(frame, bytes | bytearray | memoryview):
        raise MalformedFrame(f"a frame must be bytes, not {type(frame).__name__}")
    frame = bytes(frame)
    if not frame.startswith(FRAME_MAGIC):
        raise MalformedFrame(
            f"not an offcash frame: expected magic {FRAME_MAGIC!r}, got {frame[:2]!r}"
        )
    if len(frame) <= HEADER_SIZE:
        raise MalformedFrame(
            f"frame of {len(frame)} bytes is too short (header {HEADER_SIZE} bytes + data)"
        )
    _magic, version, number, total, digest = _HEADER.unpack_from(frame)
    if version != FRAME_VERSION:
        raise MalformedFrame(
            f"unsupported frame version {version} (this reader knows {FRAME_VERSION})"
        )
    if total == 0 or not 1 <= number <= total:
        raise MalformedFrame(f"invalid frame position {number} of {total}")
    return Frame(number, total, digest, frame[HEADER_SIZE:])


class FrameAssembler:
    """Collect frames of one message in any order, with repeats, until it is complete.

    Suits a camera loop: call :meth:`add` for every code scanned, show :attr:`missing`, and
    call :meth:`message` once :attr:`complete` is true.
    """

    def __init__(self) -> None:
        """Start with no frame."""
        self._total: int | None = None
        self._digest = b""
        self._chunks: dict[int, bytes] = {}

    @property
    def total(self) -> int | None:
        """Frame count of the message, or ``None`` before the first frame."""
        return self._total

    @property
    def received(self) -> tuple[int, ...]:
        """Numbers (1-based) of the frames received so far, sorted."""
        return tuple(sorted(self._chunks))

    @property
    def missing(self) -> tuple[int, ...]:
        """Numbers (1-based) of the frames not yet received (empty before the first frame)."""
        if self._total is None:
            return ()
        return tuple(n for n in range(1, self._total + 1) if n not in self._chunks)

    @property
    def complete(self) -> bool:
        """Whether every frame of the message has been received."""
        return self._total is not None and len(self._chunks) == self._total

    def add(self, frame: bytes | Frame) -> bool:
        """Add one frame (raw or parsed); return :attr:`complete`.

        A repeat of a frame already held is ignored. Raises :class:`MalformedFrame`,
        :class:`MixedFrames` (frame of another message) or :class:`ConflictingFrames`.
        """
        parsed = frame if isinstance(frame, Frame) else parse_frame(frame)
        if self._total is None:
            self._total = parsed.total
            self._digest = parsed.digest
        elif parsed.digest != self._digest or parsed.total != self._total:
            raise MixedFrames(
                f"frame {parsed.number}/{parsed.total} of message {parsed.digest.hex()} "
                f"mixed with frames of message {self._digest.hex()} ({self._total} frames); "
                "give the frames of one message only"
            )
        held = self._chunks.get(parsed.number)
        if held is None:
            self._chunks[parsed.number] = parsed.chunk
        elif held != parsed.chunk:
            raise ConflictingFrames(
                f"two different frames {parsed.number}/{parsed.total} for message "
                f"{self._digest.hex()}"
            )
        return self.complete

    def message(self) -> bytes:
        """Return the reassembled message.

        Raises :class:`NoFrames`, :class:`MissingFrames` or :class:`CorruptMessage`.
        """
        if self._total is None:
            raise NoFrames("no offcash frame given")
        missing = self.missing
        if missing:
            raise MissingFrames(missing, self._total)
        data = b"".join(self._chunks[n] for n in range(1, self._total + 1))
        if _digest(data) != self._digest:
            raise CorruptMessage(
                f"reassembled message of {len(data)} bytes does not match its digest "
                f"{self._digest.hex()}; a frame is corrupt or forged"
            )
        return data


def decode_frames(frames: Iterable[bytes]) -> bytes:
    """Reassemble a message from its frames, given in any order, repeats allowed.

    Raises :class:`NoFrames`, :class:`MalformedFrame`, :class:`MixedFrames`,
    :class:`ConflictingFrames`, :class:`MissingFrames` or :class:`CorruptMessage`.
    """
    assembler = FrameAssembler()
    for frame in frames:
        assembler.add(frame)
    return assembler.message()


# --------------------------------------------------------------------------- rendering


def _modules(frame: bytes, scale: int = 1) -> Image.Image:
    """The QR code of ``frame`` without quiet zone, dark modules 0 and light 255, ``scale``
    pixels per module."""
    code = zxingcpp.create_barcode(frame, zxingcpp.BarcodeFormat.QRCode, ec_level=ERROR_LEVEL)
    matrix = memoryview(cast(Any, code.to_image(scale=scale, add_quiet_zones=False)))
    height, width = cast(tuple[int, int], matrix.shape)
    return Image.frombytes("L", (width, height), matrix.tobytes())


def _code_image(frame: bytes, scale: int) -> Image.Image:
    return ImageOps.expand(_modules(frame, scale), border=_IMAGE_BORDER * scale, fill=255)


def render_frame_images(
    data: bytes, *, scale: int = DEFAULT_SCALE, budget: int = FRAME_BUDGET
) -> list[Image.Image]:
    """Render each frame of ``data`` as its own grayscale QR image, in frame order.

    For a display that cycles through the codes, or for one image file per frame.
    ``scale`` is pixels per module; each code has a 4-module quiet zone.
    """
    if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
        raise ValueError(f"scale must be a positive integer, not {scale!r}")
    return [_code_image(frame, scale) for frame in encode_frames(data, budget=budget)]


def render_image(
    data: bytes, *, scale: int = DEFAULT_SCALE, budget: int = FRAME_BUDGET
) -> Image.Image:
    """Render ``data`` as one black-and-white image holding all its QR codes.

    Several frames are laid out left to right, top to bottom in a near-square grid, each with
    a 4-module quiet zone. ``scale`` is pixels per module. Raises ``ValueError`` for a bad
    scale or an image larger than :data:`MAX_IMAGE_PIXELS`.
    """
    codes = render_frame_images(data, scale=scale, budget=budget)
    cell_w = max(code.width for code in codes)
    cell_h = max(code.height for code in codes)
    cols = math.ceil(math.sqrt(len(codes)))
    rows = math.ceil(len(codes) / cols)
    if cols * cell_w * rows * cell_h > MAX_IMAGE_PIXELS:
        raise ValueError("image too large; use a smaller scale or a larger frame budget")
    canvas = Image.new("L", (cols * cell_w, rows * cell_h), 255)
    for index, code in enumerate(codes):
        col, row = index % cols, index // cols
        x = col * cell_w + (cell_w - code.width) // 2
        y = row * cell_h + (cell_h - code.height) // 2
        canvas.paste(code, (x, y))
    return canvas.convert("1", dither=Image.Dither.NONE)


def render_png(data: bytes, *, scale: int = DEFAULT_SCALE, budget: int = FRAME_BUDGET) -> bytes:
    """Return the PNG file content of :func:`render_image`."""
    buffer = io.BytesIO()
    render_image(data, scale=scale, budget=budget).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def write_png(
    data: bytes,
    path: str | os.PathLike[str],
    *,
    scale: int = DEFAULT_SCALE,
    budget: int = FRAME_BUDGET,
) -> None:
    """Write ``data`` as ONE PNG image holding all its QR codes, atomically."""
    atomic_write(path, render_png(data, scale=scale, budget=budget))


def render_terminal(data: bytes, *, border: int = 2, budget: int = FRAME_BUDGET) -> str:
    """Return ``data`` as QR codes drawable in a terminal with Unicode half blocks.

    One character per module column and two module rows per line; light modules are drawn
    as blocks, so the code reads correctly on a dark background (scanners also accept it
    inverted). Several frames are drawn one under another, each under an ``offcash frame
    i/n`` caption.
    """
    frames = encode_frames(data, budget=budget)
    parts: list[str] = []
    for number, frame in enumerate(frames, start=1):
        if len(frames) > 1:
            parts.append(f"offcash frame {number}/{len(frames)}\n")
        parts.append(_half_blocks(_modules(frame), border))
    return "".join(parts)


#: A terminal cell for (upper module light, lower module light).
_HALF_BLOCKS: Final = {(False, False): " ", (True, False): "\u2580", (False, True): "\u2584"}


def _half_blocks(modules: Image.Image, border: int) -> str:
    """Draw a QR code's modules two rows a line, light modules as blocks, with ``border``
    light modules around it."""
    width = modules.width + 2 * border
    light = [[True] * width for _ in range(border)]
    pixels = modules.tobytes()
    for y in range(modules.height):
        row = pixels[y * modules.width : (y + 1) * modules.width]
        light.append([True] * border + [v == 255 for v in row] + [True] * border)
    light += [[True] * width for _ in range(border)]
    if len(light) % 2:
        light.append([False] * width)  # the line under the code: terminal background
    lines = []
    for top, bottom in zip(light[0::2], light[1::2], strict=True):
        lines.append(
            "".join(_HALF_BLOCKS.get(pair, "\u2588") for pair in zip(top, bottom, strict=True))
        )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- reading


#: zxing-cpp's binarizers, tried in turn: its default (local average) and, for the codes that
#: one misses in an image holding several (about one 7-code image in ten), a global histogram.
_BINARIZERS: Final = (zxingcpp.Binarizer.LocalAverage, zxingcpp.Binarizer.GlobalHistogram)


def scan_image(
    image: Image.Image, *, binarizer: zxingcpp.Binarizer = _BINARIZERS[0]
) -> list[bytes]:
    """Return the raw content of every QR code found in ``image`` (any order, maybe none).

    Raises :class:`ImageError` when the image is too large or cannot be processed.
    """
    if image.width * image.height > MAX_IMAGE_PIXELS:
        raise ImageError(
            f"image of {image.width}x{image.height} pixels exceeds {MAX_IMAGE_PIXELS} pixels"
        )
    try:
        gray = image.convert("L")
        codes = zxingcpp.read_barcodes(
            gray,
            formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode),
            binarizer=binarizer,
        )
    except Exception as exc:  # pillow and the decoder raise a zoo of types on odd images
        raise ImageError(f"cannot scan image: {exc}") from exc
    return [code.bytes for code in codes if code.valid]


def _assemble(images: Sequence[tuple[Image.Image, str]]) -> bytes:
    """The message whose frames the images hold; each image must hold an offcash frame.

    While frames are missing, the images are scanned again: with the other binarizer, then in
    overlapping tiles (zxing-cpp finds every code of a crowded image more surely in pieces of
    it: about one 7-code image in 25 needs this)."""
    assembler = FrameAssembler()
    for image, name in images:
        for frame in _offcash_frames(scan_image(image), name):
            assembler.add(frame)
    for rescan in ("binarizer", "tiles"):
        if assembler.complete:
            break
        for image, _ in images:
            if rescan == "binarizer":
                contents = scan_image(image, binarizer=_BINARIZERS[1])
            else:
                contents = _scan_tiles(image, math.ceil(math.sqrt(assembler.total or 1)))
            for content in contents:
                if content.startswith(FRAME_MAGIC):
                    assembler.add(content)
    return assembler.message()


def _scan_tiles(image: Image.Image, cells: int) -> list[bytes]:
    """Scan ``image`` in windows of 1.5 x 1.5 cells of a ``cells`` x ``cells`` grid, moved
    half a cell at a time, so that every code of such a grid lies whole in some window."""
    found: list[bytes] = []
    if cells < 2:
        return found
    step_x, step_y = image.width / (2 * cells), image.height / (2 * cells)
    for i in range(2 * cells - 1):
        for j in range(2 * cells - 1):
            left, top = int(i * step_x), int(j * step_y)
            window = (left, top, int(left + 3 * step_x), int(top + 3 * step_y))
            found += scan_image(image.crop(window))
    return found


def _open_image(content: bytes, name: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(content))
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise ImageError(
                f"{name}: image of {image.width}x{image.height} pixels exceeds "
                f"{MAX_IMAGE_PIXELS} pixels"
            )
        image.load()
    except ImageError:
        raise
    except Exception as exc:  # UnidentifiedImageError, truncated data, bombs, plugin errors...
        raise ImageError(f"{name}: not a readable image ({exc})") from exc
    return image


def _read_file(path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{os.fspath(path)}: no such file") from None
    except OSError as exc:
        raise ImageError(f"{os.fspath(path)}: cannot read ({exc.strerror or exc})") from exc


def _offcash_frames(contents: list[bytes], name: str) -> list[bytes]:
    if not contents:
        raise NoQrCode(f"{name}: no QR code found in the image")
    frames = [content for content in contents if content.startswith(FRAME_MAGIC)]
    if not frames:
        raise MalformedFrame(f"{name}: {len(contents)} QR code(s) found, none is an offcash frame")
    return frames


def decode_image(content: bytes, *, name: str = "<image>") -> bytes:
    """Decode the message held by an image file's content (PNG, JPEG, ... photo or render).

    Raises :class:`ImageError`, :class:`NoQrCode`, or a frame error (see :func:`decode_frames`).
    """
    return _assemble([(_open_image(content, name), name)])


def read_png(path: str | os.PathLike[str]) -> bytes:
    """Read the message held by the QR code(s) of one image file (PNG or any pillow format)."""
    return decode_image(_read_file(path), name=os.fspath(path))


def read_images(paths: Iterable[str | os.PathLike[str]]) -> bytes:
    """Read one message whose frames are spread across several image files, in any order.

    Every image must hold at least one offcash frame; frames may repeat across images.
    """
    images = [(_open_image(_read_file(path), os.fspath(path)), os.fspath(path)) for path in paths]
    if not images:
        raise NoFrames("no image given")
    return _assemble(images)
