"""``report.html`` in a real headless browser (Debian's ``chromium``): the page loads
without errors and every image decodes to a non-empty picture.

Skipped when chromium is not installed (``.ci/run`` installs it in CI:
``apt-get install -y chromium``).
"""

import re
import shutil
import subprocess

import numpy as np
import pytest

from funcnet import nn, optim, training

pytest.importorskip("matplotlib", reason="the report's pictures need matplotlib")
pytest.importorskip("sklearn", reason="the digits need scikit-learn (the data extra)")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                "(apt-get install -y chromium)")

# Appended to a copy of the report: records script errors and, after the page has loaded,
# the natural size of every image, in an element that --dump-dom prints.
PROBE = """
<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message || e.type)), true);
window.addEventListener("load", () => {
  const sizes = Array.from(document.images).map(
    i => (i.complete ? i.naturalWidth : -1) + "x" + (i.complete ? i.naturalHeight : -1));
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = "PROBE images=" + sizes.join(",") + " errors=" + window.__errors.length
    + " title=" + document.title + " END";
  document.body.appendChild(out);
});
</script>
"""


def _chromium(tmp_path, *args, timeout=90):
    profile = tmp_path / "profile"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
           "--virtual-time-budget=5000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp_path)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    task = training.tasks.load_task("digits", limit=200)
    training.fit(nn.models.MLP((16,), num_classes=10), optim.adam(1e-2),
                 (task.x_train, task.y_train), (task.x_test, task.y_test), epochs=3,
                 batch_size=32, run_dir=run, config={"dataset": "digits", "model": "mlp"},
                 progress=False, log=None)
    return run / "report.html"


def test_report_loads_and_its_images_render(report, tmp_path):
    page = report.read_text(encoding="utf-8")
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    proc = _chromium(tmp_path, "--dump-dom", probed.as_uri())
    found = re.search(r"PROBE images=([-\dx,]*) errors=(\d+) title=(.*?) END", proc.stdout)
    assert found, f"chromium printed no probe:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    sizes = [tuple(map(int, s.split("x"))) for s in found.group(1).split(",") if s]
    assert len(sizes) == 3, sizes          # curves, confusion matrix, gradient norms
    assert all(w > 100 and h > 100 for w, h in sizes), sizes
    assert found.group(2) == "0", "the page raised script errors"
    assert found.group(3).startswith("funcnet run")


def test_report_screenshot_is_not_blank(report, tmp_path):
    shot = tmp_path / "shot.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1000,1400", report.as_uri())
    assert shot.is_file(), "chromium wrote no screenshot"
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (1400, 1000)
    dark = np.mean(pixels.mean(axis=-1) < 0.5)            # text, axes, plot lines
    colourful = np.mean(pixels.max(axis=-1) - pixels.min(axis=-1) > 0.2)   # the plots
    assert dark > 0.002 and colourful > 0.005, (dark, colourful)
