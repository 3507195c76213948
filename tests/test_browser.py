"""End to end in a real headless Chromium (Debian's, driven by Playwright): draw with the mouse."""

import os
import shutil
from urllib.parse import urlsplit

import pytest
from helpers import start_server

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("browser")  # the class's data of these tests stays out of the user's
    proc, url = start_server(env={**os.environ, "DIGITLAB_DB": str(home / "digitlab.db"),
                                  "DIGITLAB_MODELS": str(home / "models")})
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def page(server, artifacts):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed")
        pytest.skip("chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                                           "--disable-component-update", "--disable-sync", "--no-first-run"])
        pg = browser.new_page(viewport={"width": 1000, "height": 800})
        errors, refused = [], []
        # A failed request's console line carries no address; the response listener says which it was.
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error"
              and not m.text.startswith("Failed to load resource: the server responded") else None)
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.on("response", lambda r: refused.append((r.status, urlsplit(r.url).path)) if r.status >= 400 else None)
        pg.goto(server)
        pg.errors, pg.refused = errors, refused
        yield pg
        browser.close()


def problems(page, expected=()) -> list:
    """Console errors, and refused requests other than the live readings' "no digit found" (a 422 while
    a stroke is half drawn: how many depends on the machine's speed) or those in ``expected``."""
    live = {(422, "/api/predict"), (422, "/api/read"), *expected}
    return page.errors + [r for r in page.refused if r not in live]


def stroke(page, selector, points, steps=6):
    box = page.locator(selector).bounding_box()
    sx, sy = box["width"] / 280, box["height"] / 280
    page.mouse.move(box["x"] + points[0][0] * sx, box["y"] + points[0][1] * sy)
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x * sx, box["y"] + y * sy, steps=steps)
    page.mouse.up()


def scaled(points, dx=0, scale=1.0):
    return [(x * scale + dx, y * scale) for x, y in points]


SEVEN = [[(70, 60), (210, 60), (120, 240)]]
ZERO = [[(140, 45), (95, 70), (80, 140), (95, 215), (140, 240), (185, 215), (200, 140), (185, 70), (140, 45), (132, 50)]]
FOUR = [[(150, 40), (70, 170), (220, 170)], [(170, 100), (170, 250)]]
TWO = [[(80, 90), (110, 50), (170, 50), (200, 95), (180, 150), (80, 240), (220, 240)]]


def draw_digit(page, strokes):
    page.click("#draw-clear")
    for s in strokes:
        stroke(page, "#draw-canvas", s)
    page.wait_for_function("document.getElementById('result-digit').textContent !== '–'", timeout=10000)
    page.wait_for_timeout(600)  # let the last debounced answer land
    return page.text_content("#result-digit")


@pytest.mark.parametrize("name, strokes, expected", [("seven", SEVEN, "7"), ("zero", ZERO, "0")])
def test_draw_digit(page, artifacts, name, strokes, expected):
    assert draw_digit(page, strokes) == expected
    assert len(page.locator("#bars .bar").all()) == 10
    page.screenshot(path=str(artifacts / f"browser_draw_{name}.png"))


def draw_42(page):
    page.click("#tab-number")
    page.click("#number-clear")
    box = page.locator("#number-canvas").bounding_box()
    # The number pad is 560x200 in canvas units; strokes are given in a 280x280 digit frame.
    for strokes, dx in ((FOUR, 40), (TWO, 300)):
        for s in strokes:
            pts = [(dx + x * 0.6, 20 + y * 0.6) for x, y in s]
            page.mouse.move(box["x"] + pts[0][0] * box["width"] / 560, box["y"] + pts[0][1] * box["height"] / 200)
            page.mouse.down()
            for x, y in pts[1:]:
                page.mouse.move(box["x"] + x * box["width"] / 560, box["y"] + y * box["height"] / 200, steps=6)
            page.mouse.up()
    page.wait_for_function("document.getElementById('number-result').textContent.length >= 2", timeout=10000)
    # Each stroke asks for a new reading; on a busy machine the answer for the last one can come
    # well after an earlier one ("41" while the 2 was half drawn): wait for the page to settle.
    last, still = None, 0
    for _ in range(40):
        page.wait_for_timeout(250)
        now = page.text_content("#number-result")
        still = still + 1 if now == last else 0
        last = now
        if still >= 4:
            break


def test_draw_number_42(page, artifacts):
    draw_42(page)
    page.screenshot(path=str(artifacts / "browser_number_42.png"))
    assert page.text_content("#number-result") == "42"


def test_network_view_and_no_console_errors(page, artifacts):
    page.click("#tab-draw")
    draw_digit(page, SEVEN)
    page.click("#tab-network")
    page.wait_for_selector("#network-view table", timeout=10000)
    assert page.locator("#network-view canvas").count() > 40
    page.screenshot(path=str(artifacts / "browser_network.png"), full_page=True)
    assert not problems(page), problems(page)


def test_correction_under_a_prediction_is_stored_for_the_profile(server, page, artifacts):
    page.click("#tab-draw")
    page.fill("#profile-name", "class-4b")
    page.dispatch_event("#profile-name", "change")
    read = draw_digit(page, SEVEN)
    page.wait_for_selector("#profile-fix", state="visible", timeout=10000)
    # the model's own answer cannot be given as the correction
    assert page.locator(f"#profile-fix button[data-digit='{read}']").is_disabled()
    fix = "1" if read != "1" else "7"
    page.click(f"#profile-fix button[data-digit='{fix}']")
    page.wait_for_function("/Saved/.test(document.getElementById('profile-status').textContent)", timeout=10000)
    assert f"it is a {fix}. 1 correction(s) for class-4b" in page.text_content("#profile-status")
    assert page.locator("#profile-fix").is_hidden()
    assert page.request.get(f"{server.rstrip('/')}/api/corrections").json().get("class-4b") == 1
    page.screenshot(path=str(artifacts / "browser_correction.png"), full_page=True)

    # Number tab: the right number stores each digit read wrongly, cropped from the drawing
    draw_42(page)
    assert page.text_content("#number-result") == "42"
    page.fill("#number-fix-text", "4")
    page.click("#number-fix button[type=submit]")
    assert "Type 2 digits" in page.text_content("#number-fix-status")
    page.fill("#number-fix-text", "47")
    page.click("#number-fix button[type=submit]")
    page.wait_for_function("/Saved/.test(document.getElementById('number-fix-status').textContent)", timeout=10000)
    assert "Saved 1 digit(s). 2 correction(s) for class-4b" in page.text_content("#number-fix-status")
    assert page.request.get(f"{server.rstrip('/')}/api/corrections").json().get("class-4b") == 2
    page.screenshot(path=str(artifacts / "browser_number_correction.png"), full_page=True)
    page.click("#tab-draw")
    page.fill("#profile-name", "")
    page.dispatch_event("#profile-name", "change")
    assert not problems(page), problems(page)


def test_homework_photo_upload_shows_statuses(page, artifacts, tmp_path):
    import numpy as np

    from digitlab.synthetic import pagegen
    from digitlab.reader.glyphs import GlyphBank

    data, truths, _ = pagegen.notebook_photo(GlyphBank.load("heldout", max_per_digit=100), np.random.default_rng(8))
    photo = tmp_path / "notebook.jpg"
    photo.write_bytes(data)
    page.click("#tab-check")
    page.set_input_files("#check-upload", str(photo))
    page.wait_for_selector("#check-result li", timeout=30000)
    items = page.locator("#check-result li")
    assert items.count() == len(truths)
    statuses = {items.nth(i).get_attribute("data-status") for i in range(items.count())}
    assert statuses <= {"correct", "wrong", "unsure", "unreadable"} and statuses & {"correct", "wrong"}
    page.screenshot(path=str(artifacts / "browser_homework_photo.png"), full_page=True)
    assert not problems(page), problems(page)


EXAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, "examples")
TABS = ("draw", "number", "check", "calc", "network", "study", "worksheets")


def test_every_empty_tab_says_what_to_do(page):
    context = page.context.browser.new_context(viewport={"width": 1000, "height": 800})
    try:
        pg = context.new_page()
        pg.goto(page.url)
        for tab in TABS:
            pg.click(f"#tab-{tab}")
            hint = pg.locator(f"#mode-{tab} .hint").first
            assert hint.is_visible() and len(hint.text_content().split()) >= 6, tab
    finally:
        context.close()


def test_homework_photo_shown_with_its_verdicts_and_a_line_corrected(page, artifacts):
    from digitlab.arithmetic.grammar import check_expression

    def status(text):  # what the server's arithmetic says of a reading
        v = check_expression(text)
        return "unreadable" if v["error"] else "correct" if v["correct"] else "wrong"

    page.click("#tab-check")
    page.click("#check-clear")
    stroke(page, "#check-canvas", [(20, 40), (60, 120)])
    assert not page.evaluate("checkPad.empty()")
    # "reading the lines…" shows while it works: watched from the page, as a slow CI machine may take
    # longer to show the photo than any fixed wait
    page.evaluate("""() => { const n = document.getElementById('check-busy'); window.busySeen = false;
        new MutationObserver(() => { if (!n.hidden) window.busySeen = true; }).observe(n, {attributes: true}); }""")
    page.set_input_files("#check-upload", os.path.join(EXAMPLES, "homework.jpg"))
    page.wait_for_selector("#check-result li", timeout=60000)
    assert page.evaluate("window.busySeen") and page.locator("#check-busy").is_hidden()
    assert page.evaluate("checkPad.empty()")  # the upload replaced the drawing
    assert page.locator("#check-photo img").is_visible() and page.locator("#check-canvas").is_hidden()
    # the verdicts are drawn over the photo, in its own pixels
    inked = page.evaluate("""() => { const c = document.querySelector('#check-photo canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }""")
    assert inked > 2000, inked
    lines = page.evaluate("checked.lines")
    assert len(lines) == page.locator("#check-result li").count() >= 1
    # a click on a line in the photo shows its alternatives
    size = page.evaluate("[document.querySelector('#check-photo img').naturalWidth, document.querySelector('#check-photo img').naturalHeight]")
    box = page.locator("#check-photo canvas").bounding_box()
    x0, y0, x1, y1 = lines[0]["bbox"]
    page.mouse.click(box["x"] + (x0 + x1) / 2 * box["width"] / size[0], box["y"] + (y0 + y1) / 2 * box["height"] / size[1])
    page.wait_for_selector("#check-detail button.alt", timeout=5000)
    assert page.get_attribute("#check-detail", "data-line") == "0"
    offered = page.locator("#check-detail button.alt").all_text_contents()
    assert offered[0] == lines[0]["expression"] and set(lines[0]["alternatives"]) <= set(offered)
    page.screenshot(path=str(artifacts / "browser_homework_verdicts.png"), full_page=True)
    # the teacher picks another reading: the verdict follows the same arithmetic as the server's
    pick = offered[1] if len(offered) > 1 else offered[0]
    page.click(f"#check-detail button.alt >> nth={offered.index(pick)}")
    first = page.locator("#check-result li").first
    assert first.get_attribute("data-status") == status(pick) and "(checked by you)" in first.text_content()
    for text, want, note in (("6/4=1", "wrong", "should be 3/2"), ("12+7=19", "correct", "correct"),
                             ("7=", "unreadable", "unreadable")):
        first.click() if page.locator("#check-detail").is_hidden() else None
        page.fill("#check-detail input[name=reading]", text)
        page.click("#check-detail .detail-other button")
        assert (first.get_attribute("data-status"), status(text)) == (want, want) and note in first.text_content()
    assert not problems(page), problems(page)


def test_number_photo_shown_with_its_digits(page, artifacts):
    page.click("#tab-number")
    page.click("#number-clear")
    page.wait_for_function("document.getElementById('number-result').textContent === '–'", timeout=5000)
    page.set_input_files("#number-upload", os.path.join(EXAMPLES, "number_2026.png"))
    page.wait_for_function("document.getElementById('number-result').textContent !== '–'", timeout=30000)
    assert page.locator("#number-photo img").is_visible() and page.locator("#number-canvas").is_hidden()
    assert page.text_content("#number-result").isdigit() and page.locator("#number-hint").is_hidden()
    if page.locator("#number-alts button").count():  # an alternative is offered as the correction
        page.locator("#number-alts button").first.click()
        assert page.input_value("#number-fix-text") == page.locator("#number-alts button").first.text_content()
    page.screenshot(path=str(artifacts / "browser_number_photo.png"), full_page=True)
    page.click("#number-clear")
    assert page.locator("#number-photo").is_hidden() and page.locator("#number-canvas").is_visible()
    assert not problems(page), problems(page)


def test_worksheets_tab_at_desktop_width_is_a_form_in_three_steps(page, artifacts):
    page.set_viewport_size({"width": 1280, "height": 900})
    try:
        page.click("#tab-worksheets")
        steps = [page.locator(".step").nth(i).bounding_box() for i in range(page.locator(".step").count())]
        assert len(steps) == 3
        for a, b in zip(steps, steps[1:]):  # one under the other, the same width
            assert b["y"] >= a["y"] + a["height"] and abs(a["x"] - b["x"]) < 1 and abs(a["width"] - b["width"]) < 1
        assert steps[0]["width"] > 900
        for i, title in enumerate(("1. Create a sheet", "2. Grade photos", "3. Class table")):
            assert page.locator(".step").nth(i).locator("h2").text_content() == title
        # every control of a step lies inside that step's box
        for i, sel in enumerate(("#ws-create input, #ws-create button", "#ws-photos + *, .file:has(#ws-photos)",
                                 "#ws-refresh, #ws-csv")):
            s = steps[i]
            for k in range(page.locator(sel).count()):
                c = page.locator(sel).nth(k).bounding_box()
                if c is None or c["width"] <= 1:  # a hidden file input
                    continue
                assert s["x"] <= c["x"] and c["x"] + c["width"] <= s["x"] + s["width"] + 0.5, (sel, k)
                assert s["y"] <= c["y"] and c["y"] + c["height"] <= s["y"] + s["height"] + 0.5, (sel, k)
        # the sheet's settings sit in rows of labelled fields, not scattered
        tops = {round(page.locator(f"#ws-create input[name={n}]").bounding_box()["y"]) for n in ("title", "problems", "max")}
        assert len(tops) == 1, tops
        page.screenshot(path=str(artifacts / "browser_worksheets_steps.png"), full_page=True)
    finally:
        page.set_viewport_size({"width": 1000, "height": 800})


def test_worksheets_create_grade_review_and_class_table(page, artifacts, tmp_path):
    import numpy as np

    from digitlab.reader.glyphs import GlyphBank
    from digitlab.worksheets.layout import redraw
    from digitlab.worksheets.simulate import fill, phone_photo, pupil_answers

    page.click("#tab-worksheets")
    page.fill("#ws-create input[name=problems]", "12")
    page.check("#ws-create input[value=x]")
    page.click("#ws-create button[type=submit]")
    page.wait_for_function("/Sheet WS-/.test(document.getElementById('ws-created').textContent)", timeout=30000)
    sheet_id = page.text_content("#ws-created").split()[1].rstrip(":")
    key = page.request.get(f"{page.url.rstrip('/')}/api/worksheets/{sheet_id}/key").json()
    assert key["sheet_id"] == sheet_id and len(key["problems"]) == 12

    from digitlab.predictor import grade_photo

    import cv2
    import torch
    from threadpoolctl import threadpool_limits

    def unsure_with(threads: int | None, data: bytes) -> int:
        """Unsure answers when graded with ``threads`` threads for PyTorch, OpenCV and BLAS, as a heavy
        worker of the server grades (``server.workers._heavy_worker``: one); None: this process's defaults."""
        if threads is None:
            return grade_photo(data, key=key, keep_crops=False).result["unsure"]
        before = torch.get_num_threads(), cv2.getNumThreads()
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
        try:
            with threadpool_limits(threads):
                return grade_photo(data, key=key, keep_crops=False).result["unsure"]
        finally:
            torch.set_num_threads(before[0])
            cv2.setNumThreads(before[1])

    # A pupil whose sheet has an answer the grader is unsure of, to review in the page (the first such
    # photo of a few pupils: which answers are unsure depends on the shipped reader). The server grades
    # with one thread per worker, and a borderline answer can flip with the thread count on some CPUs, so
    # the photo must be unsure with one thread and with this process's defaults.
    bank = GlyphBank.load("heldout", max_per_digit=60)
    for seed in range(11, 41):
        rng = np.random.default_rng(seed)
        answers = pupil_answers(key, rng, p_blank=0.2, p_wrong=0.3)
        data = phone_photo(fill(redraw(key), answers, bank, rng), rng, out_side=1800)
        if unsure_with(1, data) and unsure_with(None, data):
            break
    else:
        pytest.fail("no simulated pupil photo left the grader unsure")
    photo = tmp_path / "pupil.jpg"
    photo.write_bytes(data)
    cat = tmp_path / "cat.png"
    cat.write_bytes(phone_photo(np.ones((300, 200, 3), np.float32), rng, out_side=500))
    page.set_input_files("#ws-photos", [str(photo), str(cat)])
    page.wait_for_function("/graded/.test(document.getElementById('ws-status').textContent)", timeout=60000)
    assert page.text_content("#ws-status") == "1 graded, 1 not recognised", (page.text_content("#ws-graded"), page.refused)
    summary = page.text_content("#ws-graded details summary")
    assert summary.startswith("pupil.jpg: ") and f"/12 correct (sheet {sheet_id})" in summary
    assert "corner markers" in page.text_content("#ws-graded p.error")
    assert page.locator("#ws-graded img.ws-marked").count() == 1
    # every blank box the pupil left is marked blank; written answers never are
    rows = page.locator("#ws-graded tbody tr")
    marks = {int(rows.nth(i).locator("td").nth(0).text_content().rstrip(".")): rows.nth(i).locator("td").nth(4).text_content()
             for i in range(rows.count())}
    for w in answers:
        assert (marks.get(w.problem_id) == "blank") == (w.truth == "blank"), (w, marks)
    # reviewing an unsure answer: its crop is shown, one click stores the fix and updates the score
    unsure = page.locator("#ws-graded tr.ws-unsure").first
    page.wait_for_function("[...document.querySelectorAll('#ws-graded tr.ws-unsure img')].some(i => i.naturalWidth > 0)",
                           timeout=10000)
    score = int(summary.split(": ")[1].split("/")[0])
    unsure.locator("button").first.click()  # "is <the right answer>"
    page.wait_for_function("[...document.querySelectorAll('#ws-graded td')].some(td => td.textContent.includes('(fixed)'))",
                           timeout=10000)
    assert f"score now {score + 1}/12" in page.text_content("#ws-graded tbody")
    page.click("#ws-refresh")
    page.wait_for_function("document.querySelectorAll('#ws-class tbody tr').length === 1", timeout=10000)
    assert page.text_content("#ws-class tbody tr td:nth-child(2)") == sheet_id
    page.wait_for_function("!document.getElementById('ws-plot').hidden && document.getElementById('ws-plot').naturalWidth > 0",
                           timeout=10000)
    page.screenshot(path=str(artifacts / "browser_worksheets.png"), full_page=True)
    assert not problems(page, expected={(422, "/api/worksheets/grade")}), problems(page)  # the cat photo's 422


def test_every_tab_fits_a_phone(page, artifacts):
    """At 390 px, with what earlier tests left in each tab (a photo, the network view, graded sheets)."""
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        for tab in TABS:
            page.click(f"#tab-{tab}")
            if tab == "network":
                page.wait_for_selector("#network-view table", timeout=10000)
            page.wait_for_timeout(200)
            width = page.evaluate("document.documentElement.scrollWidth")
            page.screenshot(path=str(artifacts / f"browser_phone_{tab}.png"), full_page=True)
            assert width <= 390, (tab, width)
        page.click("#tab-draw")
        assert page.locator("#draw-canvas").bounding_box()["width"] <= 390
    finally:
        page.set_viewport_size({"width": 1000, "height": 800})


def test_api_docs_load_with_no_request_leaving_the_machine(page, artifacts):
    """Swagger UI comes from an installed package, not a CDN: every request stays on this machine."""
    context = page.context.browser.new_context()
    pg = context.new_page()
    urls = []

    def local_only(route):
        urls.append(route.request.url)
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost") or route.request.url.startswith("data:"):
            route.continue_()
        else:
            route.abort()

    pg.route("**/*", local_only)
    try:
        pg.goto(page.url.rstrip("/") + "/docs")
        pg.wait_for_selector(".swagger-ui .opblock", timeout=10000)  # the operations are drawn
        pg.screenshot(path=str(artifacts / "browser_docs.png"))
    finally:
        context.close()
    assert urls and all(urlsplit(u).hostname in ("127.0.0.1", "localhost") for u in urls if not u.startswith("data:")), urls


def test_a_column_sum_photo_in_the_homework_tab(page, artifacts):
    """A column sum (operands over a rule, a carry mark above) is one entry, as its line would be."""
    page.errors.clear(), page.refused.clear()  # what earlier tests expected is theirs
    page.click("#tab-check")
    page.click("#check-clear")
    page.set_input_files("#check-upload", os.path.join(EXAMPLES, "column_sum.png"))
    page.wait_for_selector("#check-result li", timeout=60000)
    lines = page.evaluate("checked.lines")
    columns = [l for l in lines if l.get("layout") == "column"]
    assert [l["expression"] for l in columns] == ["478+99=577"], lines
    assert page.locator("#check-result li").first.get_attribute("data-status") == "correct"
    inked = page.evaluate("""() => { const c = document.querySelector('#check-photo canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }""")
    assert inked > 500, inked  # the tick is drawn over the photo
    page.screenshot(path=str(artifacts / "browser_column_sum.png"), full_page=True)
    assert not problems(page), problems(page)


def test_the_calculator_works_out_a_photographed_and_a_drawn_expression(page, artifacts):
    page.errors.clear(), page.refused.clear()
    page.click("#tab-calc")
    page.click("#calc-clear")
    assert page.locator("#calc-hint").is_visible()
    page.set_input_files("#calc-upload", os.path.join(EXAMPLES, "expression.png"))
    page.wait_for_function("document.getElementById('calc-expression').textContent !== '–'", timeout=30000)
    assert page.text_content("#calc-expression") == "21×3+41×7-61"
    assert page.text_content("#calc-value") == "= 289" and page.locator("#calc-hint").is_hidden()
    assert page.locator("#calc-photo img").is_visible() and page.locator("#calc-canvas").is_hidden()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1000  # a long expression wraps
    page.screenshot(path=str(artifacts / "browser_calculator.png"), full_page=True)
    # drawn: "4+4" ("+" a cross, two fours), worked out; Clear brings the pad back
    page.click("#calc-clear")
    assert page.locator("#calc-photo").is_hidden() and page.locator("#calc-canvas").is_visible()
    box = page.locator("#calc-canvas").bounding_box()
    s = box["width"] / 640  # canvas units -> page pixels

    def pen(points):
        page.mouse.move(box["x"] + points[0][0] * s, box["y"] + points[0][1] * s)
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(box["x"] + x * s, box["y"] + y * s, steps=6)
        page.mouse.up()

    for dx in (0, 260):
        pen([(120 + dx, 40), (70 + dx, 130), (170 + dx, 130)])
        pen([(140 + dx, 80), (140 + dx, 170)])
    pen([(200, 100), (260, 100)])
    pen([(230, 70), (230, 130)])
    page.click("#calc-run")
    page.wait_for_function("document.getElementById('calc-expression').textContent !== '–'", timeout=30000)
    assert page.text_content("#calc-expression") == "4+4" and page.text_content("#calc-value") == "= 8"
    assert not problems(page), problems(page)
