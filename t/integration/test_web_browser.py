"""The web UI (web/, served by the same nginx at /) in a real browser:
t/browser/journeys.test.js drives Debian's chromium with playwright-core
against a stack whose ticketd runs jobs and triages through the Gemini fake
(answering after a delay, so triage and assignment are seen arriving live).

Journeys: a user signs up (a duplicate first: the server's error is shown),
files a ticket and watches it get triaged and assigned without reloading;
the moderator sees the assignment explanation, replies and completes it,
and the user sees both live, also after the socket was cut and reconnected;
presence changes show live; the user applies for moderator, the admin
accepts, the user's page shows it; a rejected applicant sees the cooldown; analytics renders its charts; the SPA
fallback, security of the Markdown notes and the phone layout are checked,
and every main page passes axe-core's WCAG 2 A/AA audit.
Screenshots of the main pages go to build/screenshots/ (SCREENSHOT_DIR).

Needs node, chromium (`make deps`), `npm ci` in t/browser (make deps) and
the built UI in web/dist (`make web`, a dependency of `make test`).
"""

import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import skip_printed, DEFAULT_PASSWORD, REPO, tail, unique_name
from test_jobs import key_file, runner_stack

sys.path.insert(0, str(REPO / "t" / "fakes"))
from client import GeminiFake   # noqa: E402  (t/fakes, put on the path)

BROWSER = REPO / "t" / "browser"
SCRIPT = BROWSER / "journeys.test.js"
DIST = REPO / "web" / "dist"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

# What the Gemini fake answers for the user's ticket: its notes hold raw
# HTML that must never become markup, next to Markdown that must.
TRIAGE = {
    "summary": "nginx answers 502 after the docker deploy",
    "priority": "high",
    "helpfulNotes": ("**Check the upstream** first:\n\n"
                     "- `docker ps` shows the container\n"
                     "- look at the nginx error log\n\n"
                     "<img src=x onerror=\"window.__xss=1\"> "
                     "<script>window.__xss=2</script>"),
    "relatedSkills": ["nginx", "docker"],
}


def _skip(reason):
    skip_printed("test_web_browser", reason)


@pytest.fixture
def node():
    path = shutil.which("node")
    if path is None:
        _skip("node is not installed")
    if not os.access(CHROMIUM, os.X_OK):
        _skip("%s is missing: apt-get install chromium (or make deps)"
              % CHROMIUM)
    if not all((BROWSER / "node_modules" / m).is_dir()
               for m in ("playwright-core", "axe-core")):
        _skip("%s is missing: run `cd t/browser && npm ci` (or make deps)"
              % (BROWSER / "node_modules"))
    assert (DIST / "index.html").is_file(), (
        "the web UI is not built: run `make web` (make test does)")
    return path


@pytest.fixture
def gemini():
    with GeminiFake() as fake:
        yield fake


def test_web_ui_user_moderator_admin_journeys_in_chromium(
        make_stack, tmp_path, node, gemini):
    gemini.control("ok", answer=TRIAGE, delay_ms=1500)
    path = key_file(tmp_path, "gemini.key", gemini.key)
    st = runner_stack(make_stack, tmp_path, "--triage-provider", "gemini",
                      "--ai-url", gemini.url, "--ai-key-file", path,
                      "--presence-grace-ms", "500")
    # a moderator with the ticket's skills (logs in through the browser)
    mod, _ = st.make_user("moderator", ["nginx", "docker"], prefix="mod")
    # a name the user's signup collides with, to see the server's 409
    taken, _ = st.signup(username=unique_name("taken"))
    # an applicant the admin rejected: the cooldown shows on their page
    rejected, rtoken = st.signup(username=unique_name("rejected"))
    r = st.post("/api/mod-requests", token=rtoken, json={"skills": "billing"})
    assert r.status_code == 201, r.text
    r = st.post("/api/mod-requests/%s/decide" % r.json()["request"]["_id"],
                token=st.admin_token, json={"action": "reject"})
    assert r.status_code == 200, r.text

    shots = os.environ.get("SCREENSHOT_DIR",
                           str(REPO / "build" / "screenshots"))
    env = dict(os.environ)
    env.update({
        "BASE_URL": st.url(""),
        "CHROMIUM": CHROMIUM,
        "SCREENSHOT_DIR": shots,
        "PASSWORD": DEFAULT_PASSWORD,
        "ADMIN_EMAIL": st.admin["email"],
        "MOD_USERNAME": mod["username"],
        "TAKEN_USERNAME": taken["username"],
        "REJECTED_USERNAME": rejected["username"],
        "USERNAME": unique_name("web"),
        "TRIAGE_SUMMARY": TRIAGE["summary"],
        "OUTBOX": str(st.outbox),
        "NODE_NO_WARNINGS": "1",
    })
    started = time.monotonic()
    try:
        out = subprocess.run([node, str(SCRIPT)], cwd=str(BROWSER), env=env,
                             capture_output=True, text=True, timeout=150)
    except subprocess.TimeoutExpired as e:
        pytest.fail("the browser test did not finish in 150 s\n%s\n%s\n%s"
                    % (e.stdout, e.stderr, tail(st.error_log())))
    print(out.stdout)
    print("browser journeys: %.1f s, screenshots in %s"
          % (time.monotonic() - started, shots))
    assert out.returncode == 0, (
        "node exited with %s\n--- stdout ---\n%s\n--- stderr ---\n%s\n"
        "--- error.log tail ---\n%s\n--- ticketd log tail ---\n%s" % (
            out.returncode, out.stdout, out.stderr, tail(st.error_log()),
            tail(st.daemon_log())))
    assert "not ok" not in out.stdout, out.stdout
    assert "# all " in out.stdout, out.stdout
