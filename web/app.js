// collectord dashboard: one page, no framework, no build step. Served by the daemon itself
// (GET /dashboard/) under a Content-Security-Policy that allows only this origin, so everything
// here is in this file: no inline handlers, no inline styles, text inserted as text.
//
// Data flow: GET /api/collectors (not rate limited) draws the collectors; batches are followed
// by the live event stream GET /api/events (read with fetch, since EventSource cannot send the
// X-API-Key header) and, when the server has no stream or it fails, by polling the batch status
// endpoint every 2 s within the key's rate-limit budget.
'use strict';

(() => {
  const KEY_STORAGE = 'collectord.apiKey';
  const API = new URL('../api/', window.location.href); // relative: works behind a path prefix
  const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
  const POLL_MS = 2000;
  const COLLECTORS_LIVE_MS = 15000;
  const HISTORY_LIMIT = 25;
  const MAX_BATCHES = 12;
  const STREAM_IDLE_MS = 75000; // no byte (not even a heartbeat) for this long: reconnect
  const LOG_TAIL_LINES = 500;
  const LOG_MAX_CHARS = 400000;

  // ---------------------------------------------------------------------------------------
  // State

  const state = {
    key: null, // the API key in use; '' when the server asks for none; null when disconnected
    connected: false, // the key was accepted: a later 401 means it no longer is
    generation: 0, // bumped on connect and forget: late answers of an older session are dropped
    collectors: [],
    selected: new Set(),
    batches: new Map(), // batch_id -> batch (the batch status shape, merged with job events)
    history: [],
    historyKey: '',
    mode: 'idle', // idle | connecting | live | polling | offline
    modeReason: '',
    stream: null, // {controller, lastEventId}
    streamLive: false, // events are arriving on the stream now
    streamUnsupported: false,
    streamRetryMs: 2000,
    timers: new Set(),
    pollRotation: new Map(), // batch_id -> time of its last poll
    rate: { remaining: null, resetAt: 0, pausedUntil: 0 },
    serverOffsetMs: 0, // server clock - browser clock, from generated_at
    cancelling: new Set(), // job and batch IDs with a cancel in flight or being stopped
    log: null, // {jobId, jobName, offset, terminal, busy, lastFetch}
  };

  // ---------------------------------------------------------------------------------------
  // DOM helpers

  const $ = (id) => document.getElementById(id);

  // h('div', {class: 'x', dataset: {id: 1}, onclick: f}, child, 'text', ...)
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'class') el.className = value;
      else if (name === 'dataset') Object.assign(el.dataset, value);
      else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
      else if (name === 'text') el.textContent = value;
      else el.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  function setText(el, text) {
    const value = text === null || text === undefined ? '' : String(text);
    if (el.textContent !== value) el.textContent = value;
  }

  function setAttr(el, name, value) {
    if (value === null || value === undefined) {
      if (el.hasAttribute(name)) el.removeAttribute(name);
    } else if (el.getAttribute(name) !== String(value)) {
      el.setAttribute(name, String(value));
    }
  }

  // ---------------------------------------------------------------------------------------
  // Formatting

  // The API writes six fractional digits; Date.parse is only specified for three.
  function parseTime(text) {
    if (!text) return null;
    const ms = Date.parse(String(text).replace(/(\.\d{3})\d+/, '$1'));
    return Number.isNaN(ms) ? null : ms;
  }

  const serverNow = () => Date.now() + state.serverOffsetMs;

  function formatDuration(seconds) {
    if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '';
    if (seconds < 0.1) return '< 0.1 s';
    if (seconds < 10) return `${seconds.toFixed(1)} s`;
    const whole = Math.floor(seconds);
    if (whole < 60) return `${whole} s`;
    const h = Math.floor(whole / 3600);
    const m = Math.floor((whole % 3600) / 60);
    const s = whole % 60;
    return h > 0 ? `${h}h ${m}m ${s}s` : `${m}m ${s}s`;
  }

  const timeFormat = new Intl.DateTimeFormat(undefined, {
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
  const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
    month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
  });
  const fullFormat = new Intl.DateTimeFormat(undefined, {
    dateStyle: 'medium', timeStyle: 'medium',
  });

  // Local wall-clock time: the time alone for today, the date too otherwise.
  function formatClock(ms) {
    if (ms === null) return '';
    const d = new Date(ms);
    const today = new Date();
    return d.toDateString() === today.toDateString() ? timeFormat.format(d) : dateTimeFormat.format(d);
  }

  function formatFull(ms) {
    return ms === null ? '' : fullFormat.format(new Date(ms));
  }

  function formatRelative(ms) {
    if (ms === null) return '';
    const delta = (ms - serverNow()) / 1000;
    const abs = Math.abs(delta);
    let text;
    if (abs < 45) text = `${Math.round(abs)} s`;
    else if (abs < 90 * 60) text = `${Math.round(abs / 60)} min`;
    else if (abs < 36 * 3600) text = `${Math.round(abs / 3600)} h`;
    else text = `${Math.round(abs / 86400)} d`;
    if (abs < 1) return 'now';
    return delta > 0 ? `in ${text}` : `${text} ago`;
  }

  const isTerminal = (status) => TERMINAL.has(status);

  // estimated_completion is a projection: a hint in words, never a countdown below zero.
  function timeLeft(eta) {
    if (eta === null) return '';
    const seconds = (eta - serverNow()) / 1000;
    if (seconds < 1) return ''; // overdue: the estimate no longer says anything
    return `about ${formatRelative(eta).replace(/^in /, '')} left`;
  }

  // What a run's time column says: its duration once ended, the time so far while it runs.
  function runTime(run) {
    if (run.duration_seconds !== null && run.duration_seconds !== undefined) {
      return formatDuration(run.duration_seconds);
    }
    const started = parseTime(run.started_at);
    if (started === null || isTerminal(run.status)) return '';
    return `${formatDuration((serverNow() - started) / 1000)} so far`;
  }

  // ---------------------------------------------------------------------------------------
  // Messages

  let bannerTimer = null;

  function showBanner(text, kind = 'error') {
    const banner = $('banner');
    banner.dataset.kind = kind;
    setText($('banner-text'), text);
    banner.hidden = false;
    clearTimeout(bannerTimer);
    if (kind === 'info') bannerTimer = setTimeout(hideBanner, 6000);
  }

  function hideBanner() {
    $('banner').hidden = true;
    clearTimeout(bannerTimer);
  }

  function setMode(mode, reason = '') {
    state.mode = mode;
    state.modeReason = reason;
    const el = $('connection');
    el.dataset.mode = mode;
    const text = {
      idle: 'Not connected',
      connecting: 'Connecting…',
      live: 'Live',
      polling: `Polling every ${POLL_MS / 1000} s`,
      offline: 'Offline',
    }[mode];
    setText($('connection-text'), text);
    setAttr(el, 'title', reason || null);
  }

  // ---------------------------------------------------------------------------------------
  // HTTP

  class ApiError extends Error {
    constructor(status, message, retryAfter = 0) {
      super(message);
      this.status = status;
      this.retryAfter = retryAfter;
    }
  }

  function authHeaders(extra = {}) {
    const headers = { ...extra };
    if (state.key) headers['X-API-Key'] = state.key;
    return headers;
  }

  function noteRateLimit(res) {
    const remaining = res.headers.get('X-RateLimit-Remaining');
    const reset = res.headers.get('X-RateLimit-Reset');
    if (remaining !== null) state.rate.remaining = Number(remaining);
    if (reset !== null) state.rate.resetAt = Date.now() + Number(reset) * 1000;
  }

  // Whether `count` more rate-limited requests fit the key's budget, keeping some for the
  // operator's own clicks (cancel, log, history).
  function budgetAllows(count) {
    const now = Date.now();
    if (now < state.rate.pausedUntil) return false;
    if (state.rate.remaining === null || now >= state.rate.resetAt) return true;
    return state.rate.remaining - count >= 6;
  }

  // Calls the API. Resolves with the parsed JSON (or the Response when `raw`); rejects with an
  // ApiError carrying the server's own message. A 401 ends the session: the key is asked again.
  async function api(path, { method = 'GET', body, raw = false, generation } = {}) {
    const session = generation ?? state.generation;
    const init = {
      method,
      headers: authHeaders(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      cache: 'no-store',
      credentials: 'omit',
    };
    if (body !== undefined) init.body = JSON.stringify(body);
    let res;
    try {
      res = await fetch(new URL(path, API), init);
    } catch (error) {
      throw new ApiError(0, `Cannot reach collectord (${error.message})`);
    }
    if (session !== state.generation) throw new ApiError(-1, 'superseded');
    noteRateLimit(res);
    if (!res.ok) {
      let message = `${res.status} ${res.statusText}`.trim();
      try {
        const json = await res.json();
        if (json && typeof json.error === 'string') message = json.error;
      } catch (_) {
        // Not JSON (a proxy's page): the status line is the best there is.
      }
      const retryAfter = Number(res.headers.get('Retry-After')) || 0;
      if (res.status === 429) state.rate.pausedUntil = Date.now() + Math.max(1, retryAfter) * 1000;
      if (res.status === 401 && state.connected) sessionExpired(message);
      throw new ApiError(res.status, message, retryAfter);
    }
    return raw ? res : res.json();
  }

  // Shows a failed request's reason, except those that need no word (a superseded session,
  // a 401 which already brought the key form back).
  function report(error, what) {
    if (!(error instanceof ApiError)) {
      console.error(error);
      showBanner(`${what}: ${error.message}`);
      return;
    }
    if (error.status === -1 || error.status === 401) return;
    if (error.status === 429) {
      showBanner(`${what}: ${error.message}. Updates resume in ${Math.max(1, error.retryAfter)} s.`);
      return;
    }
    showBanner(`${what}: ${error.message}`);
  }

  // ---------------------------------------------------------------------------------------
  // Timers owned by the session (cleared on forget)

  function every(ms, fn) {
    const id = setInterval(fn, ms);
    state.timers.add(() => clearInterval(id));
  }

  function later(ms, fn) {
    const cancel = () => clearTimeout(id);
    const id = setTimeout(() => {
      state.timers.delete(cancel);
      fn();
    }, ms);
    state.timers.add(cancel);
    return id;
  }

  // Calls fn at most once per `ms`, trailing.
  function debounced(ms, fn) {
    let pending = null;
    return () => {
      if (pending !== null) return;
      pending = later(ms, () => {
        pending = null;
        fn();
      });
    };
  }

  // ---------------------------------------------------------------------------------------
  // Session: key entry, forget, 401

  function showLogin(message = '') {
    $('app').hidden = true;
    $('session').hidden = true;
    $('login').hidden = false;
    setText($('login-error'), message);
    setMode('idle');
    $('api-key').focus();
  }

  function showApp() {
    $('login').hidden = true;
    $('app').hidden = false;
    $('session').hidden = false;
    const noKey = state.key === '';
    setText($('session-text'), noKey ? 'This server asks for no API key' : 'API key kept for this tab');
    $('forget-key').hidden = noKey;
  }

  function stopSession() {
    state.generation += 1;
    for (const cancel of state.timers) cancel();
    state.timers.clear();
    if (state.stream) state.stream.controller.abort();
    state.stream = null;
    state.streamLive = false;
    state.connected = false;
    state.streamUnsupported = false;
    state.streamRetryMs = 2000;
    state.collectors = [];
    state.selected.clear();
    state.batches.clear();
    state.history = [];
    state.historyKey = '';
    state.pollRotation.clear();
    state.cancelling.clear();
    state.rate = { remaining: null, resetAt: 0, pausedUntil: 0 };
    closeLog();
    $('collectors-body').replaceChildren();
    $('batches').replaceChildren();
    $('history-body').replaceChildren();
    batchViews.clear();
    collectorRows.clear();
    hideBanner();
  }

  function forgetKey() {
    sessionStorage.removeItem(KEY_STORAGE);
    stopSession();
    state.key = null;
    $('api-key').value = '';
    showLogin('The key is forgotten. Enter one to connect again.');
  }

  function sessionExpired(message) {
    sessionStorage.removeItem(KEY_STORAGE);
    stopSession();
    state.key = null;
    showLogin(`collectord refused the key: ${message}`);
  }

  // Tries `key` ('' for none) against GET /api/collectors and starts the session on success.
  async function connect(key, { silent = false } = {}) {
    stopSession();
    state.key = key;
    const generation = state.generation;
    setMode('connecting');
    $('connect-button').disabled = true;
    try {
      const listing = await api('collectors', { generation });
      if (key) sessionStorage.setItem(KEY_STORAGE, key);
      state.connected = true;
      showApp();
      applyCollectors(listing);
      start(generation);
      return true;
    } catch (error) {
      if (error.status === -1) return false;
      state.key = null;
      if (error.status === 401) {
        sessionStorage.removeItem(KEY_STORAGE);
        showLogin(silent ? '' : `collectord refused the key: ${error.message}`);
      } else {
        showLogin(`Cannot load the collectors: ${error.message}`);
        if (error.status === 0) setMode('offline', error.message);
      }
      return false;
    } finally {
      $('connect-button').disabled = false;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Collectors

  const collectorRows = new Map(); // name -> {row, cells...}

  function applyCollectors(listing) {
    const generated = parseTime(listing.generated_at);
    if (generated !== null) state.serverOffsetMs = generated - Date.now();
    state.collectors = Array.isArray(listing.collectors) ? listing.collectors : [];
    const names = new Set(state.collectors.map((c) => c.name));
    for (const name of [...state.selected]) if (!names.has(name)) state.selected.delete(name);
    // A run started elsewhere (another operator, a schedule) shows up here first.
    for (const c of state.collectors) {
      if (c.active_run && c.active_run.batch_id) trackBatch(c.active_run.batch_id, c.active_run);
    }
    renderCollectors();
  }

  function collectorState(c) {
    if (c.running > 0) return { status: 'running', text: 'Running' };
    if (c.queued > 0) return { status: 'queued', text: 'Queued' };
    return { status: 'idle', text: 'Idle' };
  }

  function makeCollectorRow(c) {
    const id = `select-${c.name}`;
    const checkbox = h('input', { type: 'checkbox', id, value: c.name });
    checkbox.addEventListener('change', () => {
      if (checkbox.checked) state.selected.add(c.name);
      else state.selected.delete(c.name);
      renderSelection();
    });
    const view = {
      checkbox,
      schedule: h('span', { class: 'sub' }),
      state: h('span', { class: 'badge' }),
      counts: h('td', { class: 'num' }),
      lastBadge: h('span', { class: 'badge' }),
      lastText: h('span', { class: 'sub' }),
      next: h('td', { class: 'when' }),
    };
    view.row = h('tr', { dataset: { collector: c.name } },
      h('td', { class: 'check' }, checkbox),
      h('td', { class: 'name' }, h('label', { for: id, text: c.name }), view.schedule),
      h('td', {}, view.state),
      view.counts,
      h('td', {}, view.lastBadge, view.lastText),
      view.next);
    return view;
  }

  function renderCollectors() {
    const body = $('collectors-body');
    const rows = [];
    for (const c of state.collectors) {
      let view = collectorRows.get(c.name);
      if (!view) {
        view = makeCollectorRow(c);
        collectorRows.set(c.name, view);
      }
      view.collector = c;
      rows.push(view.row);
    }
    for (const name of [...collectorRows.keys()]) {
      if (!state.collectors.some((c) => c.name === name)) collectorRows.delete(name);
    }
    const current = [...body.children];
    if (current.length !== rows.length || current.some((row, i) => row !== rows[i])) {
      body.replaceChildren(...rows);
    }
    updateCollectorCells();
    $('no-collectors').hidden = state.collectors.length > 0;
    const running = state.collectors.reduce((n, c) => n + (c.running || 0), 0);
    const queued = state.collectors.reduce((n, c) => n + (c.queued || 0), 0);
    setText($('collectors-summary'),
      `${state.collectors.length} configured · ${running} running · ${queued} queued`);
    renderSelection();
  }

  // The cells that change with time as well as with data.
  function updateCollectorCells() {
    for (const view of collectorRows.values()) {
      const c = view.collector;
      view.checkbox.checked = state.selected.has(c.name);
      view.row.classList.toggle('selected', state.selected.has(c.name));
      setText(view.schedule, c.schedule || 'on request');
      const s = collectorState(c);
      view.state.dataset.status = s.status;
      setText(view.state, s.text);
      setText(view.counts, `${c.running ?? 0} / ${c.queued ?? 0}`);
      const last = c.last_run;
      if (last) {
        view.lastBadge.dataset.status = last.status;
        setText(view.lastBadge, last.status);
        const ended = parseTime(last.ended_at);
        setText(view.lastText, [formatRelative(ended), formatDuration(last.duration_seconds)]
          .filter(Boolean).join(' · '));
        setAttr(view.lastText, 'title', last.error || last.message || null);
      } else {
        delete view.lastBadge.dataset.status;
        setText(view.lastBadge, '');
        setText(view.lastText, 'never run');
        setAttr(view.lastText, 'title', null);
      }
      const next = parseTime(c.next_scheduled_at);
      setText(view.next, next === null ? '—' : formatRelative(next));
      setAttr(view.next, 'title', next === null ? 'Runs only on request' : formatFull(next));
    }
  }

  function renderSelection() {
    const count = state.selected.size;
    const all = $('select-all');
    all.checked = count > 0 && count === state.collectors.length;
    all.indeterminate = count > 0 && count < state.collectors.length;
    $('run-button').disabled = count === 0;
    setText($('run-button'), count > 1 ? `Run ${count} selected` : 'Run selected');
    setText($('selection-text'), count === 0 ? 'Select collectors to run'
      : [...state.selected].sort().join(', '));
    for (const view of collectorRows.values()) {
      view.checkbox.checked = state.selected.has(view.collector.name);
      view.row.classList.toggle('selected', state.selected.has(view.collector.name));
    }
  }

  async function refreshCollectors() {
    const generation = state.generation;
    try {
      applyCollectors(await api('collectors', { generation }));
      if (state.mode === 'offline') setMode(state.streamLive ? 'live' : 'polling', state.modeReason);
    } catch (error) {
      if (error.status === 0) setMode('offline', error.message);
      else report(error, 'Cannot refresh the collectors');
    }
  }

  // ---------------------------------------------------------------------------------------
  // Triggering

  async function triggerSelected(event) {
    event.preventDefault();
    const collectors = state.collectors.map((c) => c.name).filter((n) => state.selected.has(n));
    if (collectors.length === 0) return;
    const priority = $('priority').value;
    const button = $('run-button');
    button.disabled = true;
    try {
      const answer = await api('collectors/run', { method: 'POST', body: { collectors, priority } });
      state.selected.clear();
      renderSelection();
      const skipped = answer.collectors.filter((item) => item.skipped);
      const started = answer.collectors.filter((item) => !item.skipped);
      if (started.length > 0) {
        trackBatch(answer.batch_id, null, {
          batch_id: answer.batch_id,
          status: 'queued',
          progress_percent: 0,
          started_at: started[0].started_at,
          updated_at: started[0].started_at,
          ended_at: null,
          message: `Waiting for ${started.length} collector${started.length === 1 ? '' : 's'} to start`,
          error: null,
          estimated_completion: null,
          duration_seconds: null,
          priority,
          collectors: started.map((item) => ({
            job_name: item.job_name, job_id: item.job_id, status: item.status,
            started_at: item.started_at, updated_at: item.started_at, ended_at: null,
            progress_percent: null, message: null, error: null, duration_seconds: null,
          })),
        });
      }
      for (const item of skipped) trackBatch(item.batch_id);
      const parts = [];
      if (started.length > 0) {
        parts.push(`Started ${answer.batch_id}: ${started.map((i) => i.job_name).join(', ')}`);
      }
      if (skipped.length > 0) {
        parts.push(`already running, not started again: ${skipped.map((i) => i.job_name).join(', ')}`);
      }
      showBanner(`${parts.join('; ')}.`, 'info');
      refreshHistorySoon();
      refreshCollectorsSoon();
    } catch (error) {
      report(error, 'Cannot start the run');
    } finally {
      renderSelection();
    }
  }

  // ---------------------------------------------------------------------------------------
  // Batches and jobs

  // Keeps the newer of two versions of a run: a terminal run never changes again, and
  // timestamps have a fixed width, so they compare as strings.
  function newer(current, incoming) {
    if (!current) return true;
    if (isTerminal(current.status) && !isTerminal(incoming.status)) return false;
    if (isTerminal(incoming.status) && !isTerminal(current.status)) return true;
    return (incoming.updated_at || '') >= (current.updated_at || '');
  }

  // Starts following batch `id` (no-op when already followed). `job` (a job-status object)
  // or `snapshot` (a batch status object) give something to draw before the first poll.
  function trackBatch(id, job = null, snapshot = null) {
    if (!id) return;
    let batch = state.batches.get(id);
    if (!batch) {
      batch = {
        batch_id: id, status: job ? job.batch_status || 'queued' : 'queued',
        progress_percent: job ? job.batch_progress_percent ?? 0 : 0,
        started_at: job ? job.started_at : null, updated_at: '', ended_at: null,
        message: job ? job.batch_message : null, error: null, estimated_completion: null,
        duration_seconds: null, priority: null, collectors: [], partial: true,
      };
      state.batches.set(id, batch);
      if (job) applyJob(job, false);
      if (snapshot) applyBatch(snapshot);
      else fetchBatch(id);
      if (!isTerminal(batch.status)) refreshHistorySoon(); // its runs are history's newest rows
      pruneBatches();
      scheduleRender();
    }
  }

  // Drops the oldest ended batches beyond MAX_BATCHES; running ones always stay.
  function pruneBatches() {
    const ended = [...state.batches.values()]
      .filter((b) => isTerminal(b.status))
      .sort((a, b) => (a.started_at || '').localeCompare(b.started_at || ''));
    while (state.batches.size > MAX_BATCHES && ended.length > 0) {
      state.batches.delete(ended.shift().batch_id);
    }
  }

  const batchesInFlight = new Set();

  async function fetchBatch(id) {
    if (batchesInFlight.has(id)) return; // one answer serves every caller
    batchesInFlight.add(id);
    const generation = state.generation;
    state.pollRotation.set(id, Date.now());
    try {
      applyBatch(await api(`collectors/runs/batch/${encodeURIComponent(id)}`, { generation }));
    } catch (error) {
      if (error.status === 404) {
        state.batches.delete(id);
        scheduleRender();
      } else if (error.status !== 429) {
        report(error, `Cannot load batch ${id}`);
      }
    } finally {
      batchesInFlight.delete(id);
    }
  }

  function applyBatch(snapshot) {
    let batch = state.batches.get(snapshot.batch_id);
    if (!batch) {
      state.batches.set(snapshot.batch_id, (batch = { ...snapshot, collectors: [] }));
    }
    const wasTerminal = isTerminal(batch.status);
    if (newer(batch.partial ? null : batch, snapshot)) {
      const { collectors, ...fields } = snapshot;
      Object.assign(batch, fields);
      batch.partial = false;
    }
    for (const job of snapshot.collectors || []) mergeJob(batch, job);
    if (!wasTerminal && isTerminal(batch.status)) onBatchEnded(batch);
    scheduleRender();
  }

  function mergeJob(batch, job) {
    const index = batch.collectors.findIndex((j) => j.job_id === job.job_id);
    if (index < 0) {
      batch.collectors.push({ ...job });
      return { before: null, after: batch.collectors[batch.collectors.length - 1] };
    }
    const before = { ...batch.collectors[index] };
    if (newer(batch.collectors[index], job)) Object.assign(batch.collectors[index], job);
    return { before, after: batch.collectors[index] };
  }

  // A job event or answer in the job-status shape: the job, plus its batch's summary.
  function applyJob(job, track = true) {
    if (!job || !job.batch_id) return;
    let batch = state.batches.get(job.batch_id);
    if (!batch) {
      if (track) trackBatch(job.batch_id, job);
      return;
    }
    const { before, after } = mergeJob(batch, {
      job_name: job.job_name, job_id: job.job_id, status: job.status,
      started_at: job.started_at, updated_at: job.updated_at, ended_at: job.ended_at,
      progress_percent: job.progress_percent, message: job.message, error: job.error,
      duration_seconds: job.duration_seconds, attempt: job.attempt,
      max_attempts: job.max_attempts, next_attempt_at: job.next_attempt_at,
    });
    // The job's own time stamps its batch summary; a later batch event replaces it anyway.
    if (job.batch_status && !isTerminal(batch.status) && (job.updated_at || '') >= (batch.updated_at || '')) {
      batch.status = job.batch_status;
      if (job.batch_progress_percent !== null && job.batch_progress_percent !== undefined) {
        batch.progress_percent = job.batch_progress_percent;
      }
      if (job.batch_message) batch.message = job.batch_message;
      batch.estimated_completion = job.estimated_completion ?? null;
      batch.updated_at = job.updated_at;
      // The batch's end time and error come only with the batch itself.
      if (isTerminal(batch.status)) fetchBatchSoon(batch.batch_id);
    }
    if (before && !isTerminal(before.status) && isTerminal(after.status)) {
      state.cancelling.delete(after.job_id);
      refreshHistorySoon();
      refreshCollectorsSoon();
    } else if (!before || before.status !== after.status) {
      refreshCollectorsSoon();
    }
    if (state.log && state.log.jobId === job.job_id) followLogSoon();
    scheduleRender();
  }

  const pendingBatchFetch = new Set();
  function fetchBatchSoon(id) {
    if (pendingBatchFetch.has(id)) return;
    pendingBatchFetch.add(id);
    later(800, () => {
      pendingBatchFetch.delete(id);
      const batch = state.batches.get(id);
      if (batch && (batch.ended_at === null || batch.ended_at === undefined)) fetchBatch(id);
    });
  }

  function onBatchEnded(batch) {
    state.cancelling.delete(batch.batch_id);
    for (const job of batch.collectors) if (isTerminal(job.status)) state.cancelling.delete(job.job_id);
    refreshHistorySoon();
    refreshCollectorsSoon();
  }

  async function cancel(kind, id, label) {
    state.cancelling.add(id);
    scheduleRender();
    try {
      const answer = await api(`collectors/runs/${kind}/${encodeURIComponent(id)}/cancel`,
        { method: 'POST' });
      if (kind === 'job') applyJob(answer);
      else applyBatch(answer);
      showBanner(`Cancelling ${label}…`, 'info');
    } catch (error) {
      state.cancelling.delete(id);
      report(error, `Cannot cancel ${label}`);
      const batchId = kind === 'batch' ? id : findJob(id)?.batch?.batch_id;
      if (error.status === 409 && batchId) fetchBatch(batchId);
    }
    scheduleRender();
  }

  function findJob(jobId) {
    for (const batch of state.batches.values()) {
      const job = batch.collectors.find((j) => j.job_id === jobId);
      if (job) return { batch, job };
    }
    return null;
  }

  // ---------------------------------------------------------------------------------------
  // Rendering runs (keyed, updated in place so that bars animate and focus stays put)

  const batchViews = new Map(); // batch_id -> view
  let renderQueued = false;

  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      renderBatches();
    });
  }

  function makeBar(label, large = false) {
    const fill = h('div', { class: 'fill' });
    const bar = h('div', {
      class: large ? 'bar large' : 'bar', role: 'progressbar', 'aria-label': label,
      'aria-valuemin': 0, 'aria-valuemax': 100,
    }, fill);
    const pct = h('span', { class: 'pct', 'aria-hidden': 'true' });
    return { bar, fill, pct };
  }

  // A null percentage is "not reported yet": an indeterminate bar, not a stuck 0 %.
  function updateBar(view, status, percent, detail) {
    const known = percent !== null && percent !== undefined;
    const value = known ? Math.max(0, Math.min(100, Math.floor(percent))) : null;
    view.bar.dataset.status = status;
    view.bar.classList.toggle('indeterminate', !known && !isTerminal(status));
    setAttr(view.bar, 'aria-valuenow', value);
    setAttr(view.bar, 'aria-valuetext',
      [known ? `${value} %` : 'not reported yet', detail].filter(Boolean).join(', '));
    const width = `${value ?? 0}%`;
    if (view.fill.style.width !== width) view.fill.style.width = width;
    setText(view.pct, known ? `${value} %` : '');
  }

  function makeJobView(job) {
    const label = `${job.job_name} (${job.job_id})`;
    const view = {
      status: h('span', { class: 'badge' }),
      text: h('span', { class: 'text' }),
      time: h('span', { class: 'time' }),
      attempt: h('span', { class: 'muted' }),
      logButton: h('button', {
        type: 'button', class: 'btn small', text: 'Log', 'aria-label': `Show the log of ${label}`,
      }),
      cancelButton: h('button', {
        type: 'button', class: 'btn small danger', text: 'Cancel', 'aria-label': `Cancel ${label}`,
      }),
      ...makeBar(`${job.job_name} progress`),
    };
    view.logButton.addEventListener('click', () => openLog(view.job.job_id, view.job.job_name));
    view.cancelButton.addEventListener('click',
      () => cancel('job', view.job.job_id, `${view.job.job_name} (${view.job.job_id})`));
    view.root = h('li', { class: 'job', dataset: { jobId: job.job_id } },
      h('div', { class: 'job-title' },
        h('span', { class: 'name', text: job.job_name }),
        h('span', { class: 'mono', text: job.job_id }),
        view.status, view.attempt),
      h('div', { class: 'job-actions' }, view.logButton, view.cancelButton),
      h('div', { class: 'job-progress' }, view.bar, view.pct),
      h('div', { class: 'job-detail' }, view.text, view.time));
    return view;
  }

  function updateJobView(view, job) {
    view.job = job;
    view.root.dataset.status = job.status;
    view.status.dataset.status = job.status;
    setText(view.status, job.status);
    setText(view.attempt, job.max_attempts > 1 ? `attempt ${job.attempt} of ${job.max_attempts}` : '');
    let text = job.message;
    if (job.error) text = job.error;
    else if (!text && job.status === 'queued') text = 'Waiting to start';
    setText(view.text, text || '');
    view.text.classList.toggle('error', Boolean(job.error) && job.status === 'failed');
    setAttr(view.text, 'title', text || null);
    setText(view.time, runTime(job));
    updateBar(view, job.status, job.status === 'completed' ? 100 : job.progress_percent, text);
    const stopping = state.cancelling.has(job.job_id);
    view.cancelButton.hidden = isTerminal(job.status);
    view.cancelButton.disabled = stopping;
    setText(view.cancelButton, stopping ? 'Cancelling…' : 'Cancel');
  }

  function makeBatchView(batch) {
    const view = {
      id: h('span', { class: 'mono', text: batch.batch_id }),
      priority: h('span', { class: 'priority' }),
      status: h('span', { class: 'badge' }),
      when: h('span', { class: 'when' }),
      cancelButton: h('button', {
        type: 'button', class: 'btn small danger', text: 'Cancel batch',
        'aria-label': `Cancel batch ${batch.batch_id}`,
      }),
      message: h('span', { class: 'text' }),
      error: h('div', { class: 'batch-error' }),
      jobs: h('ul', { class: 'jobs', 'aria-label': `Jobs of batch ${batch.batch_id}` }),
      jobViews: new Map(),
      ...makeBar(`Batch ${batch.batch_id} progress`, true),
    };
    view.cancelButton.addEventListener('click',
      () => cancel('batch', batch.batch_id, `batch ${batch.batch_id}`));
    view.root = h('article', {
      class: 'batch', dataset: { batchId: batch.batch_id },
      'aria-label': `Batch ${batch.batch_id}`,
    },
    h('div', { class: 'batch-head' }, view.id, view.priority, view.status, view.cancelButton),
    h('div', { class: 'batch-progress' }, view.bar, view.pct),
    h('div', { class: 'batch-message' }, view.message, view.when),
    view.error,
    view.jobs);
    return view;
  }

  function updateBatchView(view, batch) {
    view.root.dataset.status = batch.status;
    view.status.dataset.status = batch.status;
    setText(view.status, batch.status);
    view.priority.hidden = !batch.priority;
    view.priority.dataset.priority = batch.priority || '';
    setText(view.priority, batch.priority || '');
    const started = parseTime(batch.started_at);
    const left = isTerminal(batch.status) ? '' : timeLeft(parseTime(batch.estimated_completion));
    setText(view.when, [started === null ? '' : `started ${formatClock(started)}`, runTime(batch), left]
      .filter(Boolean).join(' · '));
    setAttr(view.when, 'title', started === null ? null : formatFull(started));
    setText(view.message, batch.message || '');
    setText(view.error, batch.error || '');
    view.error.hidden = !batch.error;
    updateBar(view, batch.status, batch.progress_percent, batch.message);
    const stopping = state.cancelling.has(batch.batch_id);
    view.cancelButton.hidden = isTerminal(batch.status);
    view.cancelButton.disabled = stopping;
    setText(view.cancelButton, stopping ? 'Cancelling…' : 'Cancel batch');

    const items = [];
    for (const job of batch.collectors) {
      let jobView = view.jobViews.get(job.job_id);
      if (!jobView) {
        jobView = makeJobView(job);
        view.jobViews.set(job.job_id, jobView);
      }
      updateJobView(jobView, job);
      items.push(jobView.root);
    }
    const current = [...view.jobs.children];
    if (current.length !== items.length || current.some((el, i) => el !== items[i])) {
      view.jobs.replaceChildren(...items);
    }
  }

  function renderBatches() {
    const batches = [...state.batches.values()].sort((a, b) => {
      const active = Number(isTerminal(a.status)) - Number(isTerminal(b.status));
      return active !== 0 ? active : (b.started_at || '').localeCompare(a.started_at || '');
    });
    const elements = [];
    for (const batch of batches) {
      let view = batchViews.get(batch.batch_id);
      if (!view) {
        view = makeBatchView(batch);
        batchViews.set(batch.batch_id, view);
      }
      updateBatchView(view, batch);
      elements.push(view.root);
    }
    for (const id of [...batchViews.keys()]) if (!state.batches.has(id)) batchViews.delete(id);
    const container = $('batches');
    const current = [...container.children];
    if (current.length !== elements.length || current.some((el, i) => el !== elements[i])) {
      container.replaceChildren(...elements);
    }
    $('no-runs').hidden = batches.length > 0;
    const active = batches.filter((b) => !isTerminal(b.status)).length;
    setText($('runs-summary'), active > 0 ? `${active} active` : '');
  }

  // ---------------------------------------------------------------------------------------
  // History

  async function refreshHistory() {
    const generation = state.generation;
    try {
      const answer = await api(`collectors/history?limit=${HISTORY_LIMIT}`, { generation });
      state.history = answer.collection_history || [];
      renderHistory();
    } catch (error) {
      if (error.status !== 429) report(error, 'Cannot load the history');
    }
  }

  let refreshHistorySoon = () => {};
  let refreshCollectorsSoon = () => {};

  function renderHistory() {
    const key = JSON.stringify(state.history);
    $('no-history').hidden = state.history.length > 0;
    setText($('history-summary'), state.history.length ? `latest ${state.history.length}` : '');
    if (key === state.historyKey) {
      updateHistoryTimes();
      return;
    }
    state.historyKey = key;
    const rows = state.history.map((run) => {
      const started = parseTime(run.started_at);
      const text = run.error || run.message || '';
      const logButton = h('button', {
        type: 'button', class: 'btn small', text: 'Log',
        'aria-label': `Show the log of ${run.job_name} (${run.job_id})`,
      });
      logButton.addEventListener('click', () => openLog(run.job_id, run.job_name, run.status));
      return h('tr', { dataset: { jobId: run.job_id, status: run.status } },
        h('td', { class: 'name', title: `${run.job_name} ${run.job_id}`, text: run.collector || run.job_name }),
        h('td', {}, h('span', { class: 'badge', dataset: { status: run.status }, text: run.status })),
        h('td', { class: 'when', title: formatFull(started), text: formatClock(started) }),
        h('td', { class: 'num duration', dataset: { run: JSON.stringify(run) }, text: runTime(run) }),
        h('td', { class: run.status === 'failed' ? 'message error' : 'message', title: text || null, text }),
        h('td', {}, logButton));
    });
    $('history-body').replaceChildren(...rows);
  }

  function updateHistoryTimes() {
    for (const cell of $('history-body').querySelectorAll('td.duration')) {
      setText(cell, runTime(JSON.parse(cell.dataset.run)));
    }
  }

  // ---------------------------------------------------------------------------------------
  // Job log

  // `knownStatus`: the job's status when the caller knows it (a history row).
  function openLog(jobId, jobName, knownStatus = null) {
    closeLog();
    state.log = {
      jobId, jobName, offset: 0, terminal: false, busy: false, lastFetch: 0, knownStatus,
    };
    setText($('log-title'), `Log of ${jobName} (${jobId})`);
    setText($('log-text'), 'Loading…');
    setText($('log-meta'), '');
    const status = $('log-status');
    delete status.dataset.status;
    setText(status, '');
    const dialog = $('log-dialog');
    if (!dialog.open) dialog.showModal();
    fetchLog(true);
  }

  function closeLog() {
    state.log = null;
    const dialog = $('log-dialog');
    if (dialog.open) dialog.close();
  }

  async function fetchLog(first = false) {
    const log = state.log;
    if (!log || log.busy) return;
    log.busy = true;
    log.lastFetch = Date.now();
    const generation = state.generation;
    try {
      const query = first ? `tail=${LOG_TAIL_LINES}` : `offset=${log.offset}`;
      // The log is whole only when the job had ended before this request was made.
      const endedBefore = isTerminal(findJob(log.jobId)?.job.status ?? log.knownStatus);
      const res = await api(`collectors/runs/job/${encodeURIComponent(log.jobId)}/log?${query}`,
        { raw: true, generation });
      const text = await res.text();
      if (state.log !== log) return;
      const pre = $('log-text');
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 24;
      if (first) {
        pre.textContent = text || '(nothing written yet)';
      } else if (text) {
        if (pre.textContent === '(nothing written yet)') pre.textContent = '';
        pre.textContent = (pre.textContent + text).slice(-LOG_MAX_CHARS);
      }
      log.offset = Number(res.headers.get('X-Log-Next-Offset')) || log.offset;
      const size = Number(res.headers.get('X-Log-Size')) || 0;
      const dropped = Number(res.headers.get('X-Log-Dropped')) || 0;
      const notes = [`${size.toLocaleString()} bytes`];
      if (first && text && res.headers.get('X-Log-Offset') !== '0') notes.push(`last ${LOG_TAIL_LINES} lines`);
      if (dropped > 0) notes.push(`oldest ${dropped.toLocaleString()} bytes dropped by the size cap`);
      setText($('log-meta'), notes.join(' · '));
      if (first || atBottom) pre.scrollTop = pre.scrollHeight;
      const found = findJob(log.jobId);
      const status = found ? found.job.status : log.knownStatus;
      const badge = $('log-status');
      if (status) {
        badge.dataset.status = status;
        setText(badge, status);
      }
      log.terminal = endedBefore;
      // A run this page does not follow: its status once. If it has ended, one more read makes
      // sure the log holds its last lines; if not, its batch is followed from now on.
      if (!found && first && !isTerminal(log.knownStatus)) {
        const job = await api(`collectors/runs/job/${encodeURIComponent(log.jobId)}`, { generation });
        if (state.log !== log) return;
        log.knownStatus = job.status;
        badge.dataset.status = job.status;
        setText(badge, job.status);
        if (isTerminal(job.status)) followLogSoon();
        else trackBatch(job.batch_id, job);
      }
    } catch (error) {
      if (state.log === log && error.status !== 429) {
        if (first) setText($('log-text'), '');
        report(error, `Cannot load the log of ${log.jobId}`);
      }
    } finally {
      log.busy = false;
    }
  }

  // Follows a running job's log, at most every 1.5 s (the log endpoint is rate limited).
  let logFollowTimer = null;
  function followLogSoon() {
    const log = state.log;
    if (!log || logFollowTimer !== null) return;
    const wait = Math.max(0, 1500 - (Date.now() - log.lastFetch));
    logFollowTimer = later(wait, () => {
      logFollowTimer = null;
      if (state.log === log && budgetAllows(1)) fetchLog(false);
    });
  }

  // ---------------------------------------------------------------------------------------
  // Live updates: the event stream, read with fetch so that it can carry X-API-Key

  async function openStream(generation) {
    if (state.streamUnsupported || generation !== state.generation) return;
    const controller = new AbortController();
    const stream = { controller, lastEventId: state.stream?.lastEventId ?? null };
    state.stream = stream;
    const headers = authHeaders({ Accept: 'text/event-stream' });
    if (stream.lastEventId !== null) headers['Last-Event-ID'] = stream.lastEventId;
    let res;
    try {
      res = await fetch(new URL('events', API), {
        headers, cache: 'no-store', credentials: 'omit', signal: controller.signal,
      });
    } catch (error) {
      return streamFailed(generation, stream, `the event stream failed: ${error.message}`);
    }
    if (generation !== state.generation) return controller.abort();
    const type = res.headers.get('Content-Type') || '';
    if (res.status === 401) {
      controller.abort();
      let message = 'Invalid credentials';
      try { message = (await res.json()).error || message; } catch (_) { /* keep the default */ }
      return sessionExpired(message);
    }
    if (res.status === 404 || res.status === 405 || res.status === 501) {
      controller.abort();
      state.streamUnsupported = true;
      state.stream = null;
      return usePolling(`This server has no event stream (GET /api/events answered ${res.status}).`);
    }
    if (!res.ok || !type.startsWith('text/event-stream') || !res.body) {
      controller.abort();
      let message = `${res.status} ${res.statusText}`;
      try { message = (await res.json()).error || message; } catch (_) { /* not JSON */ }
      return streamFailed(generation, stream, `the event stream answered: ${message}`);
    }
    state.streamRetryMs = 2000;
    state.streamLive = true;
    setMode('live', 'Updates arrive on the event stream GET /api/events as they happen.');
    resync();
    try {
      await readEvents(res.body, stream);
      if (generation === state.generation && state.stream === stream) {
        streamFailed(generation, stream, 'the event stream ended');
      }
    } catch (error) {
      // An abort by stopSession changed the generation; one by the idle watchdog did not.
      if (generation === state.generation && state.stream === stream) {
        const why = error.name === 'AbortError' ? 'it went silent' : error.message;
        streamFailed(generation, stream, `the event stream broke (${why})`);
      }
    }
  }

  async function readEvents(body, stream) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let idle = null;
    const watchdog = () => {
      clearTimeout(idle);
      idle = setTimeout(() => stream.controller.abort(), STREAM_IDLE_MS);
    };
    watchdog();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        watchdog();
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          handleEvent(block, stream);
        }
      }
    } finally {
      clearTimeout(idle);
    }
  }

  // One event block of text/event-stream (WHATWG HTML 9.2.6): "field: value" lines.
  function handleEvent(block, stream) {
    let type = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue; // heartbeats are comments
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') type = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id' && !value.includes('\0')) stream.lastEventId = value;
    }
    if (data.length === 0) return;
    let payload;
    try {
      payload = JSON.parse(data.join('\n'));
    } catch (error) {
      console.warn('collectord: an event that is not JSON', error);
      return;
    }
    if (type === 'batch') applyBatch(payload);
    else if (type === 'job') applyJob(payload);
  }

  function streamFailed(generation, stream, reason) {
    if (generation !== state.generation || state.stream !== stream) return;
    state.streamLive = false;
    state.stream = { controller: new AbortController(), lastEventId: stream.lastEventId };
    usePolling(`Polling while ${reason}; reconnecting in ${Math.round(state.streamRetryMs / 1000)} s.`);
    const wait = state.streamRetryMs;
    state.streamRetryMs = Math.min(30000, state.streamRetryMs * 2);
    later(wait, () => openStream(generation));
  }

  function usePolling(reason) {
    if (state.mode !== 'offline') setMode('polling', reason);
    else state.modeReason = reason;
  }

  // After (re)connecting the stream: what changed while nobody was listening.
  function resync() {
    for (const batch of state.batches.values()) if (!isTerminal(batch.status)) fetchBatch(batch.batch_id);
    refreshCollectors();
    refreshHistorySoon();
  }

  // Every 2 s while there is no stream: the collectors (free), then the active batches, as many
  // as the key's rate-limit budget allows, least recently polled first.
  function pollTick() {
    if (state.mode === 'live' || document.hidden) return;
    refreshCollectors();
    const active = [...state.batches.values()]
      .filter((b) => !isTerminal(b.status))
      .sort((a, b) => (state.pollRotation.get(a.batch_id) || 0) - (state.pollRotation.get(b.batch_id) || 0));
    let allowed = active.length;
    while (allowed > 0 && !budgetAllows(allowed)) allowed -= 1;
    for (const batch of active.slice(0, allowed)) fetchBatch(batch.batch_id);
    if (state.log && !state.log.terminal) followLogSoon();
  }

  // ---------------------------------------------------------------------------------------
  // Session start

  function start(generation) {
    refreshHistorySoon = debounced(1000, refreshHistory);
    refreshCollectorsSoon = debounced(1000, refreshCollectors);
    refreshHistory().then(() => {
      if (generation !== state.generation) return;
      // Runs still going, and the latest ended batch, so the page never opens empty-handed.
      const ids = [];
      for (const run of state.history) {
        if (!ids.includes(run.batch_id) && (!isTerminal(run.status) || ids.length === 0)) ids.push(run.batch_id);
      }
      for (const id of ids.slice(0, 4)) trackBatch(id);
    });
    every(POLL_MS, pollTick);
    every(COLLECTORS_LIVE_MS, () => { if (state.mode === 'live') refreshCollectors(); });
    every(1000, () => {
      updateCollectorCells();
      updateHistoryTimes();
      scheduleRender();
    });
    setMode('connecting');
    openStream(generation);
  }

  function init() {
    $('login-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const key = $('api-key').value.trim();
      if (key) connect(key);
    });
    $('forget-key').addEventListener('click', forgetKey);
    $('banner-close').addEventListener('click', hideBanner);
    $('run-form').addEventListener('submit', triggerSelected);
    $('select-all').addEventListener('change', (event) => {
      if (event.target.checked) for (const c of state.collectors) state.selected.add(c.name);
      else state.selected.clear();
      renderSelection();
    });
    $('history-refresh').addEventListener('click', refreshHistory);
    $('log-close').addEventListener('click', closeLog);
    $('log-dialog').addEventListener('close', () => { state.log = null; });
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && state.key !== null) pollTick();
    });

    const stored = sessionStorage.getItem(KEY_STORAGE);
    // Without a stored key, ask the server whether it wants one at all (auth.required = false
    // on a loopback address): then the page opens straight away.
    connect(stored || '', { silent: !stored });
  }

  init();
})();
