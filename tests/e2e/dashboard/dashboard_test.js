#!/usr/bin/env node
// The built-in dashboard page end to end: the real collectord (auth on, an API key), real
// collector processes whose progress steps wait for files this test creates, and Debian's
// headless Chromium driven by playwright-core. The page is loaded from the daemon itself, the
// key entered, a batch triggered and its bars watched step by step to 100 %, the run found in
// the history with a duration, a job's log opened, a second running job cancelled, the key
// forgotten. Screenshots go to --artifacts; --docs-screenshot also writes the README's picture.
//
// Usage: node dashboard_test.js --daemon PATH/TO/collectord --artifacts DIR
//                               [--docs-screenshot docs/images/dashboard.png]
// Set COLLECTORD_KEEP_TEST_DIRS to keep the temp folder.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const API_KEY = 'dashboard-e2e-key-0123456789abcdef';
const READ_ONLY_KEY = 'dashboard-e2e-reader-0123456789ab';
const STEP_TIMEOUT = 30000;
const VIEWPORT = { width: 1366, height: 768 };
const CHROMIUM = '/usr/bin/chromium';

function parseArgs(argv) {
  const args = { daemon: null, artifacts: null, docsScreenshot: null };
  for (let i = 0; i < argv.length; i += 1) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = inline !== undefined ? inline : argv[++i];
    if (flag === '--daemon') args.daemon = value;
    else if (flag === '--artifacts') args.artifacts = value;
    else if (flag === '--docs-screenshot') args.docsScreenshot = value;
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!args.daemon || !args.artifacts) {
    throw new Error('usage: dashboard_test.js --daemon PATH --artifacts DIR [--docs-screenshot PNG]');
  }
  return args;
}

// A collector that reports progress in STEPS steps; step N starts only once the file
// $GATES/$COLLECTOR_JOB_ID.N exists (bounded: it gives up after 60 s).
const STEPPED_COLLECTOR = `#!/bin/sh
steps=\${STEPS:-3}
say() { printf '%s\\n' "$1" >&3; }
wait_gate() {
  n=0
  while [ ! -e "$GATES/$COLLECTOR_JOB_ID.$1" ]; do
    n=$((n + 1))
    if [ $n -gt 1200 ]; then echo "gave up waiting for step $1" >&2; exit 3; fi
    sleep 0.05
  done
}
echo "$COLLECTOR_NAME: connecting to the API"
say '{"progress": 0, "message": "Connecting to the API"}'
i=1
while [ $i -le $steps ]; do
  wait_gate $i
  echo "$COLLECTOR_NAME: page $i of $steps fetched"
  say "{\\"progress\\": $((i * 100 / steps)), \\"message\\": \\"Fetched page $i of $steps\\"}"
  i=$((i + 1))
done
echo "$COLLECTOR_NAME: all $steps pages stored"
`;

const FAILING_COLLECTOR = `#!/bin/sh
echo "sentinelone: token rejected" >&2
printf '{"status": "failed", "error": "API returned 401 Unauthorized"}\\n' >&3
exit 2
`;

function writeConfig(root) {
  const gates = path.join(root, 'gates');
  fs.mkdirSync(gates);
  fs.mkdirSync(path.join(root, 'collectors.d'));
  fs.mkdirSync(path.join(root, 'logs'));
  fs.writeFileSync(path.join(root, 'stepped.sh'), STEPPED_COLLECTOR, { mode: 0o755 });
  fs.writeFileSync(path.join(root, 'failing.sh'), FAILING_COLLECTOR, { mode: 0o755 });
  const collectors = {
    ninja: `command = ../stepped.sh\nenv.STEPS = 3\n`,
    threatlocker: `command = ../stepped.sh\nenv.STEPS = 2\n`,
    backup: `command = ../stepped.sh\nenv.STEPS = 10\nschedule = every 24h\n`,
    sentinelone: `command = ../failing.sh\nschedule = every 6h\n`,
  };
  for (const [name, body] of Object.entries(collectors)) {
    fs.writeFileSync(path.join(root, 'collectors.d', `${name}.ini`),
      `[collector]\n${body}env.GATES = ${gates}\n`);
  }
  fs.writeFileSync(path.join(root, 'api_keys'),
    `${API_KEY} read,run dashboard-e2e\n${READ_ONLY_KEY} read dashboard-e2e-reader\n`);
  fs.writeFileSync(path.join(root, 'collectord.ini'), [
    '[http]', 'address = 127.0.0.1', 'port = 0',
    '[store]', 'url = sqlite:collectord.db',
    '[collectors]', 'directory = collectors.d', 'max_concurrent = 8',
    '[auth]', 'required = true', 'api_keys_file = api_keys',
    // The page keeps to the key's budget by itself; a roomy one keeps this test's pace steady.
    '[ratelimit]', 'requests_per_minute = 600',
    '[logs]', 'directory = logs', '',
  ].join('\n'));
  return gates;
}

// Polls `check` (sync or async) every 50 ms until it returns a truthy value; throws naming
// `what` after `timeout` ms.
async function waitFor(check, what, timeout = STEP_TIMEOUT) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function request(port, method, target, body) {
  return new Promise((resolve, reject) => {
    const headers = { 'X-API-Key': API_KEY };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const req = http.request({ host: '127.0.0.1', port, method, path: target, headers, timeout: 10000 },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => { text += chunk; });
        res.on('end', () => {
          let json = null;
          try { json = JSON.parse(text); } catch (_) { /* not JSON */ }
          resolve({ status: res.statusCode, headers: res.headers, text, json });
        });
      });
    req.on('timeout', () => req.destroy(new Error(`${method} ${target} timed out`)));
    req.on('error', reject);
    if (body !== undefined) req.write(JSON.stringify(body));
    req.end();
  });
}

// Whether the daemon serves GET /api/events: the page should then be live, else polling.
function probeEventStream(port) {
  return new Promise((resolve) => {
    const req = http.get({
      host: '127.0.0.1', port, path: '/api/events',
      headers: { 'X-API-Key': API_KEY, Accept: 'text/event-stream' }, timeout: 5000,
    }, (res) => {
      resolve(res.statusCode === 200 && String(res.headers['content-type']).startsWith('text/event-stream'));
      req.destroy();
    });
    req.on('timeout', () => { req.destroy(); resolve(false); });
    req.on('error', () => resolve(false));
  });
}

class Daemon {
  constructor(binary, root) {
    this.root = root;
    this.portFile = path.join(root, 'port');
    this.out = fs.openSync(path.join(root, 'daemon.out'), 'a');
    this.child = spawn(binary, [`--config=${path.join(root, 'collectord.ini')}`,
      `--port-file=${this.portFile}`], { stdio: ['ignore', this.out, this.out] });
    this.exited = new Promise((resolve) => this.child.on('exit', resolve));
  }

  async port() {
    return waitFor(() => {
      if (this.child.exitCode !== null) throw new Error(`collectord exited with ${this.child.exitCode}`);
      const text = fs.existsSync(this.portFile) ? fs.readFileSync(this.portFile, 'utf8').trim() : '';
      return text ? Number(text) : 0;
    }, 'collectord to write its port file', 20000);
  }

  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15000);
    await this.exited;
    clearTimeout(timer);
  }

  log() {
    return fs.readFileSync(path.join(this.root, 'daemon.out'), 'utf8');
  }
}

class Run {
  constructor(artifacts) {
    this.artifacts = artifacts;
    this.passed = 0;
    this.failed = 0;
    this.shots = 0;
  }

  async check(name, fn) {
    const started = Date.now();
    try {
      await fn();
      this.passed += 1;
      console.log(`ok   ${name} (${Date.now() - started} ms)`);
      return true;
    } catch (error) {
      this.failed += 1;
      console.log(`FAIL ${name}: ${error.stack || error}`);
      return false;
    }
  }

  async screenshot(page, name) {
    this.shots += 1;
    const file = path.join(this.artifacts, `${String(this.shots).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file });
    return file;
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

// The aria-valuenow of a progress bar, or null while indeterminate.
async function barValue(locator) {
  const value = await locator.getAttribute('aria-valuenow');
  return value === null ? null : Number(value);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const started = Date.now();
  let chromium;
  try {
    ({ chromium } = require('playwright-core'));
  } catch (error) {
    console.log(`playwright-core is not installed here (run tests/e2e/dashboard/install.sh): ${error.message}`);
    console.log('0 passed, 1 failed');
    return 1;
  }
  if (!fs.existsSync(CHROMIUM)) {
    console.log(`${CHROMIUM} is missing (scripts/install-deps.sh installs Debian's chromium)`);
    console.log('0 passed, 1 failed');
    return 1;
  }
  fs.mkdirSync(args.artifacts, { recursive: true });
  for (const old of fs.readdirSync(args.artifacts)) {
    if (old.endsWith('.png')) fs.rmSync(path.join(args.artifacts, old));
  }

  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'collectord-dashboard-'));
  const gates = writeConfig(root);
  const open = (jobId, step) => fs.writeFileSync(path.join(gates, `${jobId}.${step}`), '');
  const daemon = new Daemon(args.daemon, root);
  const run = new Run(args.artifacts);
  let context = null;
  let printRequests = () => {};
  try {
    const port = await daemon.port();
    const base = `http://127.0.0.1:${port}`;
    const streaming = await probeEventStream(port);
    console.log(`collectord on ${base}; GET /api/events ${streaming ? 'streams' : 'is not served'}: ` +
      `the page should be ${streaming ? 'live' : 'polling'}`);

    // A failed run before the page opens, so the history has something to show.
    const failing = await request(port, 'POST', '/api/collectors/run', { collectors: ['sentinelone'] });
    assert(failing.status === 201, `trigger sentinelone: ${failing.status} ${failing.text}`);
    await waitFor(async () => (await request(port, 'GET',
      `/api/collectors/runs/batch/${failing.json.batch_id}`)).json?.status === 'failed',
    'the sentinelone run to fail');

    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'collectord-dashboard-profile-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: VIEWPORT,
      deviceScaleFactor: 1,
      colorScheme: 'light',
      reducedMotion: 'reduce',
    });
    const page = context.pages()[0] || await context.newPage();
    // What the page asks of the API, by route: its cost against the key's rate limit.
    const requests = new Map();
    page.on('request', (r) => {
      const url = new URL(r.url());
      if (!url.pathname.startsWith('/api/')) return;
      const route = `${r.method()} ${url.pathname.replace(/\/(bc|[a-z0-9]{2})_\d{8}/g, '/{id}')}`;
      requests.set(route, (requests.get(route) || 0) + 1);
      if (process.env.DASHBOARD_TEST_TRACE) console.log(`  ${((Date.now() - started) / 1000).toFixed(2)} ${route}${url.search}`);
    });
    printRequests = () => {
      const lines = [...requests].sort((a, b) => b[1] - a[1]).map(([route, n]) => `  ${String(n).padStart(4)} ${route}`);
      console.log(`API requests made by the page:\n${lines.join('\n')}`);
    };
    const pageErrors = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error' && /Content Security Policy|Refused to/i.test(message.text())) {
        pageErrors.push(message.text());
      }
    });
    await page.addInitScript(() => {
      window.__cspViolations = [];
      document.addEventListener('securitypolicyviolation',
        (e) => window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
    });

    const batchCard = (id) => page.locator(`article.batch[data-batch-id="${id}"]`);
    const jobRow = (id) => page.locator(`li.job[data-job-id="${id}"]`);
    const jobBar = (id) => jobRow(id).getByRole('progressbar');

    const loaded = await run.check('GET / redirects to the page, which asks for the API key', async () => {
      const response = await page.goto(`${base}/`);
      assert(response.ok(), `page answered ${response.status()}`);
      assert(page.url() === `${base}/dashboard/`, `landed on ${page.url()}`);
      const csp = response.headers()['content-security-policy'] || '';
      assert(/script-src 'self'/.test(csp) && /connect-src 'self'/.test(csp), `CSP: ${csp}`);
      await page.getByLabel('API key').waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
      assert(await page.locator('#app').isHidden(), 'the collectors are shown without a key');
      await run.screenshot(page, 'key-asked');
    });
    if (!loaded) throw new Error('the page did not load');

    await run.check('a wrong key is refused with the server\'s message', async () => {
      await page.getByLabel('API key').fill('not-the-key');
      await page.getByRole('button', { name: 'Connect' }).click();
      await page.locator('#login-error', { hasText: 'Invalid credentials: invalid API key' })
        .waitFor({ timeout: STEP_TIMEOUT });
      assert(await page.evaluate(() => sessionStorage.length) === 0, 'a refused key was stored');
    });

    await run.check('the right key shows every collector, its state and schedule', async () => {
      await page.getByLabel('API key').fill(API_KEY);
      await page.getByRole('button', { name: 'Connect' }).click();
      await page.locator('#collectors-body tr').nth(3).waitFor({ timeout: STEP_TIMEOUT });
      const names = await page.locator('#collectors-body tr').evaluateAll(
        (rows) => rows.map((row) => row.dataset.collector));
      assert(JSON.stringify(names) === JSON.stringify(['backup', 'ninja', 'sentinelone', 'threatlocker']),
        `collectors: ${names}`);
      const sentinel = page.locator('tr[data-collector="sentinelone"]');
      assert((await sentinel.innerText()).includes('every 6h'), 'the schedule is not shown');
      await sentinel.locator('.badge[data-status="failed"]').waitFor({ timeout: STEP_TIMEOUT });
      const stored = await page.evaluate(() => sessionStorage.getItem('collectord.apiKey'));
      assert(stored === API_KEY, 'the key is not in session storage');
      assert(await page.evaluate(() => localStorage.length) === 0, 'something went to local storage');
      await page.locator('#history-body tr[data-status="failed"]').waitFor({ timeout: STEP_TIMEOUT });
    });

    const mode = streaming ? 'live' : 'polling';
    await run.check(`the page follows runs ${streaming ? 'on the event stream' : 'by polling'}`, async () => {
      await page.locator(`#connection[data-mode="${mode}"]`).waitFor({ timeout: STEP_TIMEOUT });
    });

    let batch = null;
    await run.check('selected collectors run as one batch with the chosen priority', async () => {
      await page.getByLabel('ninja', { exact: true }).check();
      await page.getByLabel('threatlocker', { exact: true }).check();
      await page.getByLabel('Priority').selectOption('high');
      const posted = page.waitForResponse((r) => r.url().endsWith('/api/collectors/run'));
      await page.getByRole('button', { name: 'Run 2 selected' }).click();
      const answer = await (await posted).json();
      batch = { id: answer.batch_id, ninja: answer.collectors[0].job_id, threat: answer.collectors[1].job_id };
      await batchCard(batch.id).waitFor({ timeout: STEP_TIMEOUT });
      const api = await request(port, 'GET', `/api/collectors/runs/batch/${batch.id}`);
      assert(api.json.priority === 'high', `priority ${api.json.priority}`);
      await batchCard(batch.id).locator('.priority', { hasText: 'high' }).waitFor({ timeout: STEP_TIMEOUT });
      await waitFor(async () => (await barValue(jobBar(batch.ninja))) === 0, 'ninja to report 0 %');
      assert(!(await page.getByLabel('ninja', { exact: true }).isChecked()), 'the selection was kept');
    });

    await run.check('the job and batch bars move with each step to 100 %', async () => {
      assert(batch, 'no batch');
      const batchBar = batchCard(batch.id).getByRole('progressbar', { name: `Batch ${batch.id} progress` });
      const seen = [];
      for (const [step, expected] of [[1, 33], [2, 66]]) {
        open(batch.ninja, step);
        await waitFor(async () => (await barValue(jobBar(batch.ninja))) === expected,
          `the ninja bar at ${expected} %`);
        seen.push(await barValue(batchBar));
        const text = await jobRow(batch.ninja).innerText();
        assert(text.includes(`Fetched page ${step} of 3`), `message: ${text}`);
        await run.screenshot(page, `ninja-${expected}`);
      }
      open(batch.threat, 1);
      open(batch.threat, 2);
      await waitFor(async () => (await jobRow(batch.threat).getAttribute('data-status')) === 'completed',
        'threatlocker to complete');
      open(batch.ninja, 3);
      await waitFor(async () => (await barValue(batchBar)) === 100, 'the batch bar at 100 %');
      await batchCard(batch.id).locator('.batch-head .badge[data-status="completed"]')
        .waitFor({ timeout: STEP_TIMEOUT });
      assert((await barValue(jobBar(batch.ninja))) === 100, 'ninja is not at 100 %');
      seen.push(100);
      assert(seen.every((v, i) => i === 0 || v >= seen[i - 1]) && seen[0] < 100,
        `batch bar went ${seen.join(' -> ')}`);
      const when = batchCard(batch.id).locator('.batch-message .when');
      await waitFor(async () => /started .* · (\d+(\.\d)? s|\d+m \d+s)$/.test(await when.innerText()),
        'the batch\'s duration');
      await run.screenshot(page, 'batch-completed');
    });

    await run.check('the history lists the run with its duration', async () => {
      assert(batch, 'no batch');
      const row = page.locator(`#history-body tr[data-job-id="${batch.ninja}"]`);
      await page.locator(`#history-body tr[data-job-id="${batch.ninja}"][data-status="completed"]`)
        .waitFor({ timeout: STEP_TIMEOUT });
      const duration = await row.locator('td.duration').innerText();
      const api = await request(port, 'GET', `/api/collectors/runs/job/${batch.ninja}`);
      assert(api.json.duration_seconds > 0, `API duration ${api.json.duration_seconds}`);
      assert(/^\d+(\.\d)? s$|^\d+m \d+s$/.test(duration), `duration cell "${duration}"`);
    });

    await run.check('a job\'s log opens with its output and collectord\'s lines', async () => {
      assert(batch, 'no batch');
      await jobRow(batch.ninja).getByRole('button', { name: /Show the log/ }).click();
      const dialog = page.getByRole('dialog');
      await dialog.waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
      await dialog.locator('#log-text', { hasText: 'ninja: all 3 pages stored' }).waitFor({ timeout: STEP_TIMEOUT });
      const text = await dialog.locator('#log-text').innerText();
      assert(text.includes('ninja: page 2 of 3 fetched') && text.includes('[collectord]'), `log: ${text}`);
      assert((await dialog.innerText()).includes(batch.ninja), 'the dialog does not name the job');
      await run.screenshot(page, 'job-log');
      await dialog.getByRole('button', { name: 'Close' }).click();
      await dialog.waitFor({ state: 'hidden', timeout: STEP_TIMEOUT });
    });

    await run.check('a running job is cancelled from its Cancel button', async () => {
      const posted = await request(port, 'POST', '/api/collectors/run', { collectors: ['backup'] });
      assert(posted.status === 201, `trigger backup: ${posted.status} ${posted.text}`);
      const jobId = posted.json.collectors[0].job_id;
      open(jobId, 1);
      open(jobId, 2);
      // Started outside the page: it finds the run on its own.
      await waitFor(async () => (await barValue(jobBar(jobId))) === 20, 'the backup bar at 20 %');
      await jobRow(jobId).getByRole('button', { name: `Cancel backup-collector (${jobId})` }).click();
      await waitFor(async () => (await jobRow(jobId).getAttribute('data-status')) === 'cancelled',
        'backup to show cancelled');
      const api = await request(port, 'GET', `/api/collectors/runs/job/${jobId}`);
      assert(api.json.status === 'cancelled' && api.json.error === 'cancelled by request',
        `API says ${api.json.status} ${api.json.error}`);
      assert(await jobRow(jobId).getByRole('button', { name: /^Cancel/ }).isHidden(),
        'a cancelled job still offers Cancel');
      await run.screenshot(page, 'job-cancelled');
    });

    await run.check('the page ran without script errors or CSP violations', async () => {
      const violations = await page.evaluate(() => window.__cspViolations);
      assert(violations.length === 0, `CSP violations: ${violations.join('; ')}`);
      assert(pageErrors.length === 0, `errors: ${pageErrors.join('; ')}`);
    });

    if (args.docsScreenshot) {
      await run.check('a clean screenshot for the README', async () => {
        const posted = await request(port, 'POST', '/api/collectors/run',
          { collectors: ['ninja', 'threatlocker', 'backup'], priority: 'normal' });
        const [ninja, threat, backup] = posted.json.collectors.map((c) => c.job_id);
        open(ninja, 1); open(ninja, 2);
        open(threat, 1);
        for (const step of [1, 2, 3, 4, 5, 6, 7]) open(backup, step);
        await waitFor(async () => (await barValue(jobBar(ninja))) === 66 &&
          (await barValue(jobBar(threat))) === 50 && (await barValue(jobBar(backup))) === 70,
        'the bars of the README run');
        for (const id of [ninja, threat, backup]) {
          await page.locator(`#history-body tr[data-job-id="${id}"]`).waitFor({ timeout: STEP_TIMEOUT });
        }
        await page.locator('#history-body tr[data-status="cancelled"]').waitFor({ timeout: STEP_TIMEOUT });
        await page.getByLabel('Priority').selectOption('normal');
        if (await page.locator('#banner').isVisible()) await page.locator('#banner-close').click();
        await page.mouse.move(0, 0);
        fs.mkdirSync(path.dirname(args.docsScreenshot), { recursive: true });
        await page.screenshot({ path: args.docsScreenshot });
        await run.screenshot(page, 'readme');
        for (const step of [3]) open(ninja, step);
        open(threat, 2);
        for (const step of [8, 9, 10]) open(backup, step);
      });
    }

    await run.check('"Forget key" clears the key and asks for it again', async () => {
      await page.getByRole('button', { name: 'Forget key' }).click();
      await page.getByLabel('API key').waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
      assert(await page.evaluate(() => sessionStorage.getItem('collectord.apiKey')) === null,
        'the key is still in session storage');
      assert(await page.locator('#app').isHidden(), 'the collectors are still shown');
      await page.reload();
      await page.getByLabel('API key').waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
    });

    await run.check('a read-only key watches, and a run it asks for is refused with the server\'s message', async () => {
      await page.getByLabel('API key').fill(READ_ONLY_KEY);
      await page.getByRole('button', { name: 'Connect' }).click();
      await page.getByLabel('ninja', { exact: true }).check({ timeout: STEP_TIMEOUT });
      await page.getByRole('button', { name: 'Run selected' }).click();
      await page.locator('#banner', {
        hasText: "Forbidden: this request needs the 'run' scope; these credentials have 'read'",
      }).waitFor({ timeout: STEP_TIMEOUT });
      await run.screenshot(page, 'read-only-refused');
    });
  } catch (error) {
    run.failed += 1;
    console.log(`FAIL ${error.stack || error}`);
  } finally {
    if (context) await context.close().catch(() => {});
    await daemon.stop();
    if (run.failed) console.log(`--- daemon output (last 4000 bytes) ---\n${daemon.log().slice(-4000)}`);
    if (process.env.COLLECTORD_KEEP_TEST_DIRS) console.log(`kept ${root}`);
    else fs.rmSync(root, { recursive: true, force: true });
  }
  printRequests();
  console.log(`screenshots in ${args.artifacts}`);
  console.log(`${run.passed} passed, ${run.failed} failed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return run.failed === 0 ? 0 : 1;
}

main().then((code) => process.exit(code), (error) => {
  console.error(error);
  process.exit(1);
});
