import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from digitlab.errors import ImageError
from digitlab.digits.preprocess import NoDigitFound, deskew, preprocess_digit
from digitlab.io.images import load_image
from digitlab.synthetic.renders import render_user_image


def centre_of_mass(img):
    ys, xs = np.indices(img.shape)
    return (ys * img).sum() / img.sum(), (xs * img).sum() / img.sum()


def png(arr, mode=None, **save):
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, save.pop("format", "PNG"), **save)
    return buf.getvalue()


def test_invariants_on_real_digits(mnist_test, rng):
    for i in range(20):
        raw = render_user_image(mnist_test.images[i], rng)
        out = preprocess_digit(raw)
        assert out.shape == (28, 28) and out.dtype == np.float32
        assert 0.0 <= out.min() and out.max() <= 1.0
        cy, cx = centre_of_mass(out)
        assert abs(cy - 14) < 1 and abs(cx - 14) < 1  # where MNIST puts it (measured: 13.99, 14.00)
        ys, xs = np.nonzero(out > 0.1)
        assert max(np.ptp(ys), np.ptp(xs)) <= 21  # fitted into the 20 px box (+ anti-aliased fringe)


def test_inverted_input_gives_same_result(mnist_test):
    digit = mnist_test.images[0]
    dark_on_light = np.pad(255 - digit, 10, constant_values=255)
    light_on_dark = np.pad(digit, 10)
    a, b = preprocess_digit(png(dark_on_light)), preprocess_digit(png(light_on_dark))
    assert np.abs(a - b).max() < 1e-5


def test_mnist_digit_roundtrips_close_to_itself(mnist_test):
    digit = mnist_test.images[3]
    out = preprocess_digit(png(digit))
    corr = np.corrcoef(out.ravel(), digit.ravel().astype(float))[0, 1]
    assert corr > 0.9


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "I;16", "1", "CMYK", "LA"])
def test_image_modes(mnist_test, mode):
    digit = np.pad(255 - mnist_test.images[1], 8, constant_values=255)
    img = Image.fromarray(digit).convert("RGB")
    if mode == "I;16":
        img = Image.fromarray((np.asarray(img.convert("L")).astype(np.uint16) * 257))
    else:
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, "JPEG" if mode == "CMYK" else "PNG")
    out = preprocess_digit(buf.getvalue())
    ref = preprocess_digit(png(digit))
    # mode "1" is dithered by Pillow, so it is only roughly the same picture
    assert np.corrcoef(out.ravel(), ref.ravel())[0, 1] > (0.9 if mode == "1" else 0.95)


def test_transparent_canvas_export(mnist_test):
    """A canvas export: black (or white) paint on transparent pixels."""
    alpha = np.pad(mnist_test.images[2], 6)
    for colour in (0, 255):
        rgba = np.zeros((*alpha.shape, 4), np.uint8)
        rgba[..., :3] = colour
        rgba[..., 3] = alpha
        out = preprocess_digit(png(rgba, "RGBA"))
        ref = preprocess_digit(png(alpha))
        assert np.abs(out - ref).max() < 1e-5


def test_exif_orientation_is_applied():
    arr = np.full((40, 80), 255, np.uint8)
    arr[:, :10] = 0  # a bar on the left edge
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    grey = load_image(buf.getvalue())
    assert grey.shape == (80, 40)
    assert grey[:8].mean() < 0.3  # the bar is now along the top


def test_noisy_uneven_background(mnist_test, rng):
    digit = cv_resize(mnist_test.images[0], 140)
    ramp = np.linspace(0.55, 1.0, 140)[None, :].repeat(140, 0)
    grey = ramp * (1 - digit) + rng.normal(0, 0.04, ramp.shape)
    out = preprocess_digit((grey.clip(0, 1) * 255).astype(np.uint8))
    ref = preprocess_digit(np.pad(mnist_test.images[0], 4))
    assert np.corrcoef(out.ravel(), ref.ravel())[0, 1] > 0.8


def cv_resize(digit, side):
    import cv2

    return cv2.resize(digit.astype(np.float32) / 255, (side, side), interpolation=cv2.INTER_CUBIC).clip(0, 1)


@pytest.mark.parametrize("value", [0, 255, 128])
def test_blank_images_have_no_digit(value):
    with pytest.raises(NoDigitFound, match="no digit"):
        preprocess_digit(png(np.full((50, 50), value, np.uint8)))


def test_first_dab_on_a_big_canvas_is_ink_but_scattered_noise_is_not():
    import cv2

    from digitlab.digits.preprocess import ink_map

    canvas = np.full((280, 280), 255, np.uint8)
    cv2.circle(canvas, (140, 140), 9, 0, -1)  # one pointer-down with an 18 px brush: ~250 px, under 0.5%
    assert ink_map(canvas / 255.0).max() > 0.9
    with pytest.raises(NoDigitFound) as refused:  # ink, but not a digit's shape
        preprocess_digit(png(canvas))
    assert "no ink" not in str(refused.value)
    noisy = np.full((280, 280), 255, np.uint8)
    rng = np.random.default_rng(0)
    noisy[rng.integers(0, 280, 300), rng.integers(0, 280, 300)] = 0
    with pytest.raises(NoDigitFound, match="no ink"):
        ink_map(noisy / 255.0)


@pytest.mark.parametrize("raw, msg", [
    (b"", "empty"),
    (b"hello, this is text", "not an image"),
    (b"%PDF-1.4\n%...", "not an image"),
])
def test_bad_files(raw, msg):
    with pytest.raises(ImageError, match=msg):
        preprocess_digit(raw, name="x.png")


def test_truncated_png(mnist_test):
    raw = png(np.pad(mnist_test.images[0], 20))
    with pytest.raises(ImageError):
        preprocess_digit(raw[: len(raw) // 2])


def test_decompression_bomb_refused_before_decoding():
    import zlib, struct

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    raw = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 30001 * 20)) + chunk(b"IEND", b"")
    assert len(raw) < 10_000
    with pytest.raises(ImageError, match="too large"):
        preprocess_digit(raw)


def test_deskew_straightens_slanted_bar():
    img = np.zeros((28, 28), np.float32)
    for r in range(4, 24):
        c = 8 + (r - 4) // 2
        img[r, c : c + 3] = 1.0
    straight = deskew(img)
    cols = [np.nonzero(straight[r] > 0.5)[0].mean() for r in range(6, 22) if (straight[r] > 0.5).any()]
    assert np.ptp(cols) < 2.5


@settings(max_examples=60, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 70), st.integers(1, 70))))
def test_preprocess_never_crashes(arr):
    try:
        out = preprocess_digit(arr)
    except NoDigitFound:
        return
    assert out.shape == (28, 28) and np.isfinite(out).all() and 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize("kind", ["binarise", "dilate", "erode", "slant", "marker", "stretch"])
def test_degraded_digits_stay_readable_pictures(kind, mnist_test):
    """Every degradation gives dark ink on white at the working size; a marker inks more than a pen,
    a stretch changes the digit's proportions."""
    import cv2

    from digitlab.synthetic.renders import degrade

    digit = mnist_test.images[0]
    out = degrade(digit, kind, np.random.default_rng(1))
    plain = degrade(digit, "none", np.random.default_rng(1))
    assert out.dtype == np.uint8 and out.ndim == 2 and out.min() < 60 and np.median(out) > 200

    def box(img):
        ys, xs = np.nonzero(img < 128)
        return np.ptp(xs) + 1, np.ptp(ys) + 1

    if kind == "marker":
        assert (out < 128).sum() > 1.8 * (plain < 128).sum()
        assert (out < 128).sum() > (degrade(digit, "dilate", np.random.default_rng(1)) < 128).sum()
    if kind == "stretch":
        (w0, h0), (w1, h1) = box(plain), box(out)
        assert abs(np.log((w1 / h1) / (w0 / h0))) > np.log(1.25)
    preprocess_digit(cv2.imencode(".png", out)[1].tobytes(), reject=False)  # and preprocessing takes it
