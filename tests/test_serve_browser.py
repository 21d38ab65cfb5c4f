"""The demo page in headless Chromium: type a review, click, see the answer and highlights."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import NEEDS_PLAYWRIGHT, REPO, cli_env, import_or_skip, require

# Over ~20 s of fixtures or CLI runs: left out of `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
# Both checked at collection, before any server starts.
playwright = import_or_skip('playwright.sync_api', NEEDS_PLAYWRIGHT)
require(Path(CHROMIUM).exists(),
        'needs Chromium: apt-get install chromium (Debian\'s package)')
# Where the screenshot is kept besides the test's temp dir (CI artefacts).
ARTEFACTS = os.environ.get('SENTIMENT_JAX_ARTEFACTS')
# A trained run to serve instead of the tiny test run: the README's
# screenshot (sentiment_jax/assets/serve_page.png) is this test's, made
# against runs/base.
SERVED_RUN = os.environ.get('SENTIMENT_JAX_SERVED_RUN')


def free_port() -> int:
  with socket.socket() as probe:
    probe.bind(('127.0.0.1', 0))
    return probe.getsockname()[1]


@pytest.fixture
def server(request):
  workdir = SERVED_RUN or request.getfixturevalue('trained_run')
  port = free_port()
  process = subprocess.Popen(
      [sys.executable, '-m', 'sentiment_jax.serve', f'--workdir={workdir}',
       f'--port={port}'], cwd=REPO, env=cli_env(), stderr=subprocess.PIPE,
      text=True)
  url = f'http://127.0.0.1:{port}'
  deadline = time.monotonic() + 120
  while True:
    try:
      urllib.request.urlopen(url + '/healthz', timeout=1)
      break
    except OSError:
      assert process.poll() is None, process.stderr.read()
      assert time.monotonic() < deadline, 'server did not start'
      time.sleep(0.3)
  yield url
  process.terminate()
  # uvicorn shuts down cleanly, then re-raises SIGTERM so the exit status
  # still says what stopped it.
  assert process.wait(timeout=30) in (0, -signal.SIGTERM)
  assert 'Traceback' not in process.stderr.read()


def test_type_a_review_and_see_the_answer(server, tmp_path):
  with playwright.sync_playwright() as p:
    browser = p.chromium.launch(executable_path=CHROMIUM,
                                args=['--no-sandbox', '--disable-gpu'])
    page = browser.new_page(viewport={'width': 1000, 'height': 900})
    requests = []
    page.on('request', lambda r: requests.append(r.url))
    page.goto(server + '/')
    assert not page.is_visible('#heads_png')  # No broken image before asked.
    page.fill('#text', 'A wonderful, brilliant and superb movie. The acting '
              'was dull in places, but the story was great.')
    page.click('#submit')
    page.wait_for_selector('#answer:not([hidden])', timeout=60_000)
    assert not page.is_visible('#heads_png')
    label = page.text_content('#label')
    assert any(word in label for word in ('positive', 'negative'))
    assert '%' in page.text_content('#confidence')
    words = page.locator('#highlight span.word').all_text_contents()
    assert {'wonderful', 'superb', 'dull', 'great'} <= set(words)
    page.select_option('#view', 'gradient_x_input')
    assert page.locator('#highlight span.word').all_text_contents() == words
    page.click('#heads')
    page.wait_for_selector('#heads_png:not([hidden])', timeout=60_000)
    shot = tmp_path / 'serve_page.png'
    page.screenshot(path=str(shot), full_page=True)
    browser.close()
  assert all(url.startswith(server) for url in requests), requests
  assert shot.stat().st_size > 10_000
  if ARTEFACTS:
    Path(ARTEFACTS).mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, Path(ARTEFACTS) / shot.name)
