// Drives the dashboard in headless Chromium for crates/doppel/tests/dashboard.rs.
//
// The Rust test runs the real doppel binary and owns the data: this script asks it for
// readings by printing `{"await": ...}` lines on stdout and waits for one line on stdin in
// answer. Every other stdout line is `{"step": ...}` with what was checked or measured; the
// last is `{"done": true, ...}`. Any failed check throws, which exits non-zero with the reason.
//
// Environment: DOPPEL_URL, DOPPEL_TOKEN, CHROMIUM (executable), SHOTS (screenshot folder),
// USER_DATA_DIR (a fresh Chromium profile).

import { createInterface } from 'node:readline';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const URL = process.env.DOPPEL_URL;
const TOKEN = process.env.DOPPEL_TOKEN;
const SHOTS = process.env.SHOTS;
const WAIT = 20_000;

const lines = createInterface({ input: process.stdin });
const pending = [];
const queued = [];
lines.on('line', (l) => (pending.length ? pending.shift()(l) : queued.push(l)));
/** Asks the Rust test for something and waits (bounded) for its one-line answer. */
function ask(what) {
  process.stdout.write(`${JSON.stringify({ await: what.kind, ...what })}\n`);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to ${what.kind} within 60 s`)), 60_000);
    const take = (l) => {
      clearTimeout(timer);
      resolve(l);
    };
    if (queued.length) take(queued.shift());
    else pending.push(take);
  });
}
const report = (step, data = {}) => process.stdout.write(`${JSON.stringify({ step, ...data })}\n`);

function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
}

const consoleErrors = [];
mkdirSync(SHOTS, { recursive: true });

const context = await chromium.launchPersistentContext(process.env.USER_DATA_DIR, {
  executablePath: process.env.CHROMIUM,
  headless: true,
  chromiumSandbox: false,
  viewport: { width: 1440, height: 900 },
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});

try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(WAIT);
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));
  const shot = (name) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });

  // ---- sign in (keyboard only) ----
  await page.goto(`${URL}/`);
  await page.waitForURL(/#\/signin/);
  await page.locator('#token').waitFor();
  check(await page.evaluate(() => document.activeElement?.id === 'token'), 'the token field has focus');
  await page.keyboard.type(TOKEN);
  await shot('01-signin');
  await page.keyboard.press('Enter');
  await page.locator('tr[data-twin="pump-1"]').waitFor();
  report('signed_in');

  // ---- fleet ----
  const row = page.locator('tr[data-twin="pump-1"]');
  await page.locator('tr[data-twin="pump-1"] .health-cell .health:not(.health-none)').waitFor();
  const health = await row.locator('.health-cell .health').getAttribute('class');
  check(/health-(green|grey|red)/.test(health), `pump-1 has a health colour (${health})`);
  check((await row.locator('td').nth(1).innerText()).includes('Centrifugal pump'), 'the model is shown');
  const treeOrder = await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.twin));
  check(treeOrder.indexOf('site-1') < treeOrder.indexOf('line-1') && treeOrder.indexOf('line-1') < treeOrder.indexOf('pump-1'), `tree order ${treeOrder}`);
  await shot('02-fleet');
  report('fleet', { rows: treeOrder, health });

  // First meaningful paint: a reload with the token kept by the tab.
  const paints = [];
  for (let i = 0; i < 3; i++) {
    await page.reload();
    await page.locator('tr[data-twin="pump-1"]').waitFor();
    paints.push(
      await page.evaluate(() => ({
        fleet: window.__doppel.ready.fleet,
        fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null,
        domContentLoaded: performance.getEntriesByType('navigation')[0]?.domContentLoadedEventEnd ?? null,
      })),
    );
  }
  report('first_paint', { runs: paints });

  // ---- twin detail, reached with the keyboard ----
  await page.locator('a[href="#/twins/pump-1"]').focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/#\/twins\/pump-1/);
  await page.locator('tr[data-signal="bearing_temp"]').waitFor();
  await page.locator('.live-chart[data-signal="bearing_temp"] canvas').waitFor();
  await page.waitForFunction(() => document.getElementById('live-status')?.dataset.status === 'live');
  check((await page.locator('#relations').innerText()).includes('feeds'), 'relations listed');
  check((await page.locator('#properties').innerText()).includes('P-0001'), 'properties listed');

  // A reading posted over HTTP shows up live.
  const value = 42.4242;
  const t0 = Date.now();
  await ask({ kind: 'reading', twin: 'pump-1', values: { bearing_temp: value } });
  const posted = Date.now();
  await page.waitForFunction(
    () => document.querySelector('tr[data-signal="bearing_temp"] .value')?.textContent === '42.42',
    null,
    { timeout: WAIT },
  );
  const shown = Date.now();
  const chartPoints = await page.evaluate(() => window.__doppel.stats.events);
  check(chartPoints >= 1, 'the live event reached the page');
  // Charts below the fold are drawn once they scroll into view (the advice and remaining-life
  // cards sit above them).
  await page.locator('.live-chart[data-signal="bearing_temp"]').scrollIntoViewIfNeeded();
  await page.waitForFunction(
    () => document.querySelector('.live-chart[data-signal="bearing_temp"] .card-value')?.textContent === '42.42',
    null,
    { timeout: WAIT },
  );
  report('live_value', { postMs: posted - t0, visibleAfterPostMs: shown - posted });

  // Out of its normal range: the row and the twin turn red.
  // Rows, like charts, are redrawn while on screen.
  await page.locator('tr[data-signal="bearing_temp"]').scrollIntoViewIfNeeded();
  await ask({ kind: 'reading', twin: 'pump-1', values: { bearing_temp: 150.5 } });
  await page.locator('tr[data-signal="bearing_temp"].out').waitFor();
  await page.locator('.twin-health .health-red').waitFor();
  report('out_of_range');

  // History: loaded, then zoomed by dragging across the chart.
  /** Waits for the history to finish loading with a status other than `previous`. */
  const historyLoaded = (previous) =>
    page.waitForFunction((p) => {
      const el = document.querySelector('.history-status');
      return el?.dataset.state === 'ready' && el.textContent !== p;
    }, previous);
  await historyLoaded('');
  // The last 15 minutes (up to now, so with the readings just posted), chosen by keyboard.
  const firstStatus = await page.locator('.history-status').innerText();
  await page.locator('#history button', { hasText: '15 min' }).focus();
  await page.keyboard.press('Enter');
  await historyLoaded(firstStatus);
  const before = await page.locator('.history-status').innerText();
  const over = page.locator('.history-plot .u-over');
  await over.scrollIntoViewIfNeeded();
  const box = await over.boundingBox();
  check(box && box.width > 100, 'history chart has a plot area');
  // The readings are seconds old: drag across the last third of the range, to its right edge.
  await page.mouse.move(box.x + box.width * 0.67, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width - 1, box.y + box.height / 2, { steps: 8 });
  await page.mouse.up();
  await historyLoaded(before);
  const after = await page.locator('.history-status').innerText();
  check(/buckets \(\d+ with data\)/.test(after), `the zoomed range has data: ${after}`);
  check(!(await page.locator('button:text("Back")').isDisabled()), 'Back is enabled after a zoom');
  await page.locator('#live').scrollIntoViewIfNeeded();
  await shot('03-twin');
  await page.locator('#history').scrollIntoViewIfNeeded();
  await shot('04-history-zoomed');
  report('history_zoom', { before, after });

  // ---- models ----
  await page.locator('nav a[href="#/models"]').click();
  await page.getByRole('heading', { name: /Centrifugal pump/ }).waitFor();
  check((await page.locator('main').innerText()).includes('bearing_temp'), 'signals listed');
  await shot('05-models');
  report('models');

  // ---- alarms: one arrives live, is acknowledged and confirmed with the keyboard ----
  await page.locator('#nav a[href="#/alarms"]').focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/#\/alarms$/);
  await page.waitForFunction(() => 'alarms' in window.__doppel.ready);
  await page.waitForFunction(() => document.getElementById('live-status')?.dataset.status === 'live');
  check((await page.locator('#nav a[href="#/alarms"]').getAttribute('aria-current')) === 'page', 'the Alarms link is current');
  check((await page.locator('tr[data-alarm]').count()) === 0, 'no alarm before the anomaly');
  const askedAt = Date.now();
  const alarmId = await ask({ kind: 'anomaly', twin: 'pump-3' });
  const alarmRow = page.locator(`tr[data-alarm="${alarmId}"]`);
  await alarmRow.waitFor();
  const alarmShownMs = Date.now() - askedAt;
  check((await alarmRow.getAttribute('data-state')) === 'active', 'the new alarm is active');
  const severity = await alarmRow.locator('.sev').innerText();
  check(/Critical|Major|Warning/.test(severity), `a severity is shown (${severity})`);
  check((await alarmRow.innerText()).includes('pump-3'), 'the twin is named');
  check((await alarmRow.locator('.alarm-summary').innerText()).includes('bearing_temp'), 'the summary names the signal');
  check((await page.locator('.alarms .summary').innerText()).startsWith('1 open alarm'), 'the summary counts it');
  await shot('07-alarms');
  report('alarm_live', { id: alarmId, severity, shownAfterAskMs: alarmShownMs });

  // Acknowledge with the keyboard: the row changes state and focus stays on the row.
  await alarmRow.locator('button[data-action="ack"]').focus();
  await page.keyboard.press('Enter');
  await page.locator(`tr[data-alarm="${alarmId}"][data-state="acknowledged"]`).waitFor();
  check(await alarmRow.locator('button[data-action="ack"]').isDisabled(), 'Acknowledge is disabled once acknowledged');
  check((await alarmRow.locator('.alarm-state').innerText()).startsWith('acknowledged'), 'the state reads acknowledged');
  const focused = await page.evaluate(() => document.activeElement?.dataset.focus ?? document.activeElement?.tagName);
  check(focused === `details:${alarmId}`, `focus moved to the alarm's details button (${focused})`);
  const server = JSON.parse(await ask({ kind: 'alarm', id: alarmId }));
  check(server.state === 'acknowledged', `the server has it acknowledged (${server.state})`);
  report('alarm_acknowledged', { focused });

  // The detail: the explanation per signal and the history with who acknowledged it.
  await page.keyboard.press('Enter');
  const detail = page.locator(`#alarm-detail-${alarmId}`);
  await detail.waitFor();
  await detail.locator('.explain tr[data-signal="bearing_temp"]').waitFor();
  const explained = await detail.locator('.explain tr[data-signal="bearing_temp"]').innerText();
  check(/expected/.test(explained), `expected vs observed shown: ${explained}`);
  const history = await detail.locator('.alarm-history').innerText();
  check(/raised/.test(history) && /acknowledged by/.test(history), `history lists raise and ack: ${history}`);
  await shot('08-alarm-detail');
  report('alarm_detail', { explained, history });

  // Feedback on the alarm's own page: a fault kind the server refuses shows its error, then
  // a valid one is recorded. Chromium logs the refused request itself as a console error.
  await page.goto(`${URL}/#/alarms/${alarmId}`);
  await page.locator('.alarm .alarm-detail').waitFor();
  const errorsBefore = consoleErrors.length;
  await page.locator(`#fault-${alarmId}`).focus();
  await page.keyboard.type('bearing wear!');
  await page.keyboard.press('Enter');
  const refusal = page.locator('.alarm .notice-error');
  await refusal.waitFor();
  const refusalText = await refusal.innerText();
  check(/fault_kind/.test(refusalText), `the refusal names the field: ${refusalText}`);
  consoleErrors.splice(errorsBefore, consoleErrors.length - errorsBefore, ...consoleErrors.slice(errorsBefore).filter((e) => !/status of 400/.test(e)));
  await page.locator(`#fault-${alarmId}`).fill('bearing_wear');
  await page.locator(`#fault-${alarmId}`).focus();
  await page.keyboard.press('Enter');
  await page.locator('.feedback-given', { hasText: 'Confirmed: bearing_wear' }).waitFor();
  check((await page.locator('.alarm .notice-error').count()) === 0, 'the error is gone after a valid feedback');
  report('alarm_feedback', { refusal: refusalText });

  // The twin shows its open alarm, the detector's view and the anomaly score.
  await page.locator('.alarm-detail a[href="#/twins/pump-3"]').first().click();
  await page.locator(`.twin-alarm a[href="#/alarms/${alarmId}"]`).waitFor();
  await page.locator('#detector [data-score]').waitFor();
  const detectorText = await page.locator('#detector').innerText();
  check(/anomalous|normal/.test(detectorText), `detector state shown: ${detectorText}`);
  await page.locator('.twin-health .health').waitFor();
  const twinHealthClass = await page.locator('.twin-health .health').getAttribute('class');
  check(/health-(critical|major|warning)/.test(twinHealthClass), `the twin is coloured by the alarm (${twinHealthClass})`);
  await page.waitForFunction(() => document.querySelector('tr[data-signal="bearing_temp"] .value')?.textContent);
  await page.locator('.score-plot canvas').waitFor();
  await historyLoaded('');
  await page.waitForFunction(() => /threshold/.test(document.querySelector('.score-head')?.textContent ?? ''));
  const scoreNote = await page.locator('.score-head').innerText();
  check(!/no scores/.test(scoreNote), `the score history has data: ${scoreNote}`);
  await shot('09-twin-alarm');
  await page.locator('#history').scrollIntoViewIfNeeded();
  await shot('10-twin-score');
  report('alarm_on_twin', { detector: detectorText, health: twinHealthClass, scoreNote });

  // The fleet tree colours the twin by the alarm's severity, and its line by the worst below.
  await page.locator('#nav a[href="#/"]').click();
  await page.locator('tr[data-twin="pump-3"] .health-cell .health:not(.health-none)').waitFor();
  await page.waitForFunction(() => /health-(critical|major|warning)/.test(document.querySelector('tr[data-twin="pump-3"] .health-cell .health')?.className ?? ''));
  const fleetHealth = await page.locator('tr[data-twin="pump-3"] .health-cell .health').getAttribute('class');
  const lineBelow = await page.locator('tr[data-twin="line-1"] .below .health').getAttribute('class');
  check(/health-(critical|major|warning)/.test(lineBelow ?? ''), `line-1 rolls the alarm up (${lineBelow})`);
  await shot('11-fleet-alarm');
  report('alarm_in_fleet', { health: fleetHealth, lineBelow });

  // ---- maintenance advice: the list as the server's advice book has it ----
  // Advice opens only after days of degradation, which this run does not simulate: the page
  // is checked against the server's answer, which is usually empty (then the empty state).
  await page.locator('#nav a[href="#/advice"]').focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/#\/advice$/);
  await page.waitForFunction(() => 'advice' in window.__doppel.ready);
  check((await page.locator('#nav a[href="#/advice"]').getAttribute('aria-current')) === 'page', 'the Advice link is current');
  const serverAdvice = JSON.parse(await ask({ kind: 'advice' })).advice;
  const expectedAdvice = serverAdvice
    .sort((a, b) => a.recommendation.due_by - b.recommendation.due_by || (a.id < b.id ? -1 : 1))
    .map((a) => a.id);
  const shownAdvice = await page.locator('tr[data-advice]').evaluateAll((rows) => rows.map((r) => r.dataset.advice));
  check(JSON.stringify(shownAdvice) === JSON.stringify(expectedAdvice), `the advice soonest due first: ${shownAdvice} vs the server's ${expectedAdvice}`);
  if (expectedAdvice.length) {
    // The first item's evidence, opened with the keyboard.
    await page.locator(`tr[data-advice="${expectedAdvice[0]}"] button.toggle`).focus();
    await page.keyboard.press('Enter');
    await page.locator(`#advice-detail-${expectedAdvice[0]} table.evidence`).waitFor();
  } else {
    const empty = await page.locator('.advice-body .notice').innerText();
    check(/No open or scheduled advice/.test(empty), `the empty state is shown: ${empty}`);
  }
  await shot('14-advice');
  report('advice', { shown: shownAdvice });

  // ---- remaining useful life: the fleet's worst-life panel and a twin's card ----
  // A server without the RUL routes does not list them in its OpenAPI document and the page
  // does not ask (so no refused request): the panel says "not available".
  await page.locator('#nav a[href="#/"]').click();
  await page.locator('#worst-rul [data-rul], #worst-rul ol.worst-rul').first().waitFor();
  const fleetRul = JSON.parse(await ask({ kind: 'rul' }));
  const panel = await page.locator('#worst-rul').innerText();
  if (fleetRul.status === 200) {
    const shownRul = await page.locator('#worst-rul li[data-twin]').evaluateAll((li) => li.map((l) => l.dataset.twin));
    const estimated = fleetRul.body.twins.filter((t) => t.status === 'estimated').map((t) => t.twin);
    check(JSON.stringify(shownRul) === JSON.stringify(estimated.slice(0, shownRul.length)) && shownRul.length === Math.min(5, estimated.length), `the least remaining life first: ${shownRul} vs ${estimated}`);
  } else {
    check(/Not available/.test(panel), `the panel says the estimate is not available: ${panel}`);
  }
  await shot('15-fleet-rul');
  report('rul_fleet', { status: fleetRul.status, panel });

  await page.locator('a[href="#/twins/pump-1"]').first().click();
  await page.locator('#rul [data-rul]').waitFor();
  await page.locator('#advice [data-advice]').first().waitFor();
  const twinRul = JSON.parse(await ask({ kind: 'twin_rul', twin: 'pump-1' }));
  const card = page.locator('#rul [data-rul]').first();
  const cardState = await card.getAttribute('data-rul');
  if (twinRul.status === 200) {
    check(cardState === twinRul.body.status, `the card shows the server's status (${cardState} vs ${twinRul.body.status})`);
    if (twinRul.body.reason) check((await card.innerText()).includes(twinRul.body.reason), 'the card gives the reason');
  } else {
    check(cardState === 'not_available', `the card says not available (${cardState})`);
  }
  const twinAdvice = await page.locator('#advice').innerText();
  await page.locator('#rul').scrollIntoViewIfNeeded();
  await shot('16-twin-rul');
  report('rul_twin', { status: twinRul.status, card: await page.locator('#rul').innerText(), advice: twinAdvice.slice(0, 200) });

  // ---- 100 live series at 10 Hz ----
  const frames = async (ms) =>
    page.evaluate(
      (ms) =>
        new Promise((resolve) => {
          const deltas = [];
          let last = performance.now();
          const end = last + ms;
          const s0 = { ...window.__doppel.stats };
          const f = (t) => {
            deltas.push(t - last);
            last = t;
            if (t < end) requestAnimationFrame(f);
            else {
              const s1 = window.__doppel.stats;
              resolve({
                deltas,
                events: s1.events - s0.events,
                redraws: s1.redraws - s0.redraws,
                workMs: s1.workMs - s0.workMs,
                workFrames: s1.frames - s0.frames,
                maxWorkMs: s1.maxWorkMs,
                skipped: s1.skipped - s0.skipped,
              });
            }
          };
          requestAnimationFrame(f);
        }),
      ms,
    );
  const summarize = (r) => {
    const d = r.deltas.slice(1).sort((a, b) => a - b);
    const median = d[Math.floor(d.length / 2)];
    const dropped = r.deltas.slice(1).reduce((n, x) => n + Math.max(0, Math.round(x / median) - 1), 0);
    const total = r.deltas.slice(1).reduce((a, b) => a + b, 0);
    return {
      frames: d.length,
      fps: +(d.length / (total / 1000)).toFixed(1),
      medianMs: +median.toFixed(2),
      p99Ms: +d[Math.floor(d.length * 0.99)].toFixed(2),
      maxMs: +d[d.length - 1].toFixed(2),
      dropped,
      events: r.events,
      redraws: r.redraws,
      meanWorkMs: +(r.workMs / Math.max(1, r.workFrames)).toFixed(2),
      maxWorkMs: +r.maxWorkMs.toFixed(2),
      skipped: r.skipped,
    };
  };
  await page.goto(`${URL}/#/twins/bench-1`);
  await page.locator('.live-chart[data-signal="s099"] canvas').waitFor();
  await page.waitForFunction(() => document.getElementById('live-status')?.dataset.status === 'live');
  const idle = summarize(await frames(3000));
  report('frames_idle', idle);
  // The same load on a laptop screen, with every chart on screen at once (a 6200 px tall
  // viewport), and on the fleet page (no charts: what the server, the load and the browser
  // cost on this machine without the charts).
  for (const [name, viewport] of [
    ['laptop', { width: 1440, height: 900 }],
    ['all_charts_visible', { width: 1440, height: 6200 }],
    ['fleet_page_control', { width: 1440, height: 900 }],
  ]) {
    await page.setViewportSize(viewport);
    if (name === 'fleet_page_control') {
      await page.goto(`${URL}/#/`);
      await page.locator('tr[data-twin="bench-1"]').waitFor();
    } else {
      await page.locator('#live').scrollIntoViewIfNeeded();
    }
    const visible = await page.evaluate(() => {
      const h = window.innerHeight;
      return [...document.querySelectorAll('.live-chart')].filter((c) => {
        const r = c.getBoundingClientRect();
        return r.bottom > 0 && r.top < h;
      }).length;
    });
    await ask({ kind: 'load', twin: 'bench-1', signals: 100, hz: 10, seconds: 12 });
    await page.waitForTimeout(1500);
    const r = summarize(await frames(8000));
    await ask({ kind: 'load_done' });
    report('frames_load', { viewport: name, visibleCharts: visible, ...r });
    if (name === 'laptop') await shot('06-bench-100-signals');
  }
  await page.setViewportSize({ width: 1440, height: 900 });

  // ---- what-if on a pump with hours of simulated history ----
  // The Rust test writes the history (a simulated pump, through the API) when asked. The page
  // first reads the twin's dynamics, which answer 404 until fitted: Chromium logs that
  // refused request itself as a console error, so exactly that one is dropped.
  const whatIfTwin = await ask({ kind: 'whatif_history' });
  const whatIfStarted = Date.now();
  await page.goto(`${URL}/#/twins/${whatIfTwin}`);
  const whatIfLink = page.locator(`a.whatif-link[href="#/twins/${whatIfTwin}/whatif"]`);
  await whatIfLink.focus();
  const before404 = consoleErrors.length;
  await page.keyboard.press('Enter');
  await page.waitForURL(new RegExp(`#/twins/${whatIfTwin}/whatif$`));
  const fit = page.locator('#whatif-fit');
  await page.locator('#whatif-model', { hasText: 'No model yet' }).waitFor();
  consoleErrors.splice(before404, consoleErrors.length - before404, ...consoleErrors.slice(before404).filter((e) => !/status of 404/.test(e)));
  await fit.focus();
  await page.keyboard.press('Enter');
  const flowFit = page.locator('.whatif-fit tr[data-signal="flow"]');
  await flowFit.waitFor({ timeout: 60_000 });
  const fitText = await flowFit.innerText();
  check(/\d+(\.\d+)? %/.test(fitText) && /good|fair|poor/.test(fitText), `the fit quality of flow is shown: ${fitText}`);
  check((await fit.innerText()) === 'Fit again', 'the fit button offers to fit again');
  await shot('10-whatif-fitted');
  report('whatif_fit', { flow: fitText });

  // Lower the speed command 10 minutes after the last reading, with the keyboard, and run.
  const speedIn = page.locator('#whatif-value-speed_cmd');
  const current = Number(await speedIn.inputValue());
  check(Number.isFinite(current) && current > 0, `speed_cmd is prefilled with its current value (${current})`);
  const lower = Math.max(1500, Math.round(current - 600));
  check(lower < current, `a lower speed than ${current} can be asked`);
  await speedIn.focus();
  await page.keyboard.press('Control+A');
  await page.keyboard.type(String(lower));
  await page.keyboard.press('Enter');
  const flowRow = page.locator('.whatif-summary tr[data-signal="flow"]');
  await flowRow.waitFor({ timeout: 60_000 });
  await page.locator('.whatif-chart[data-signal="flow"] canvas').waitFor();
  const meanDelta = Number(await flowRow.locator('.mean-delta').getAttribute('data-value'));
  const speedDelta = Number(await page.locator('.whatif-summary tr[data-signal="speed"] .mean-delta').getAttribute('data-value'));
  const flowText = await flowRow.innerText();
  check(meanDelta < 0, `a lower speed lowers the flow (mean delta ${meanDelta}: ${flowText})`);
  check(speedDelta < 0, `a lower speed command lowers the speed (mean delta ${speedDelta})`);
  check(/−\d/.test(await flowRow.locator('.mean-delta').innerText()), `the delta is signed: ${flowText}`);
  const rows = await page.locator('.whatif-summary tbody tr').count();
  const charts = await page.locator('.whatif-chart canvas').count();
  check(rows > 1 && charts === rows, `one chart per compared output (${charts} charts, ${rows} rows)`);
  const status = await page.locator('#whatif-status').innerText();
  check(/compared with the baseline/.test(status), `the status says what ran: ${status}`);
  await page.locator('#whatif-results').scrollIntoViewIfNeeded();
  await shot('11-whatif-scenario');
  await page.screenshot({ path: join(SHOTS, '11-whatif-page-full.png'), fullPage: true });
  report('whatif_scenario', { speedCmd: [current, lower], flowMeanDelta: meanDelta, speedMeanDelta: speedDelta, outputs: rows, flow: flowText });

  // The optimizer's best speed for the least motor power, copied into the scenario form.
  await page.locator('#opt-sense').selectOption('minimize');
  await page.locator('#opt-output').selectOption('motor_power');
  for (const box of await page.locator('.opt-inputs input[type="checkbox"]').all()) {
    if ((await box.getAttribute('id')) !== 'opt-use-speed_cmd') await box.uncheck();
  }
  await page.locator('#opt-run').click();
  const apply = page.locator('#opt-apply');
  await apply.waitFor({ timeout: 60_000 });
  const best = await page.locator('.opt-settings tr[data-signal="speed_cmd"] td').innerText();
  const bestRpm = Number(best.split(' ')[0]);
  check(bestRpm >= 1500 && bestRpm <= 3000, `the best speed is inside the allowed range: ${best}`);
  await apply.focus();
  await page.keyboard.press('Enter');
  const copied = Number(await speedIn.inputValue());
  check(copied === bestRpm, `the best speed went into the scenario form (${copied} vs ${best})`);
  check(await page.evaluate(() => document.activeElement?.id === 'whatif-value-speed_cmd'), 'focus moved to the copied value');
  await shot('12-whatif-optimize');
  report('whatif_optimize', { best, whatIfMs: Date.now() - whatIfStarted });

  // Troubleshooting an alarm of the simulated pump (its bearings made hot after its history;
  // the alarm raised earlier on pump-3, whose history is too short to rank causes, if the
  // detector raised none): what the page lists is what the server ranks.
  const troubleId = (await ask({ kind: 'whatif_alarm' })) || alarmId;
  await page.goto(`${URL}/#/alarms/${troubleId}`);
  const beforeTrouble = consoleErrors.length;
  await page.locator('#troubleshoot-run').click();
  await page.locator('.troubleshoot-body .causes, .troubleshoot-body .notice, .troubleshoot-body p:nth-child(2)').first().waitFor({ timeout: 60_000 });
  const answer = JSON.parse(await ask({ kind: 'troubleshoot', id: troubleId }));
  const troubleText = await page.locator('.troubleshoot-body').innerText();
  if (answer.status === 200) {
    const shown = await page.locator('.troubleshoot-body .causes li').evaluateAll((li) => li.map((l) => l.dataset.signal));
    check(JSON.stringify(shown) === JSON.stringify(answer.body.causes.map((c) => c.signal)), `the causes in rank order: ${shown} vs the server's`);
    if (answer.body.causes.length) check(troubleText.includes(answer.body.causes[0].evidence), `the evidence is shown: ${troubleText}`);
  } else {
    check(troubleText.includes(answer.body.error), `the server's refusal is shown plainly: ${troubleText}`);
    const refused = `status of ${answer.status}`;
    consoleErrors.splice(beforeTrouble, consoleErrors.length - beforeTrouble, ...consoleErrors.slice(beforeTrouble).filter((e) => !e.includes(refused)));
  }
  await page.locator('#troubleshoot').scrollIntoViewIfNeeded();
  await shot('13-alarm-troubleshoot');
  report('troubleshoot', { alarm: troubleId, status: answer.status, causes: answer.body.causes?.length ?? 0, text: troubleText.slice(0, 400) });

  // ---- remaining useful life learned from recorded failures ----
  // The Rust test writes three pumps of the simulated pump's model that ran to failure,
  // records their failures and fits the model; the fleet panel and the twin's card then show
  // the server's estimates.
  const fitted = JSON.parse(await ask({ kind: 'rul_history' }));
  check(fitted.status === 'trained', `the pumps' RUL model is fitted: ${JSON.stringify(fitted)}`);
  await page.goto(`${URL}/#/`);
  await page.locator('#worst-rul li[data-twin]').first().waitFor();
  const fleetAfter = JSON.parse(await ask({ kind: 'rul' }));
  const estimatedAfter = fleetAfter.body.twins.filter((t) => t.status === 'estimated').map((t) => t.twin);
  const shownAfter = await page.locator('#worst-rul li[data-twin]').evaluateAll((li) => li.map((l) => l.dataset.twin));
  check(estimatedAfter.includes(whatIfTwin), `the simulated pump has an estimate: ${estimatedAfter}`);
  check(JSON.stringify(shownAfter) === JSON.stringify(estimatedAfter.slice(0, 5)), `the least remaining life first: ${shownAfter} vs ${estimatedAfter}`);
  const worstText = await page.locator('#worst-rul').innerText();
  await shot('17-fleet-rul-estimated');
  await page.goto(`${URL}/#/twins/${whatIfTwin}`);
  await page.locator('#rul [data-rul="estimated"]').waitFor();
  await page.waitForFunction(() => (document.querySelector('tr[data-signal="flow"] .value')?.textContent ?? '') !== '', null, { timeout: WAIT });
  const estimateText = await page.locator('#rul').innerText();
  check(/\d/.test(estimateText), `the twin's card shows the estimate: ${estimateText}`);
  await page.locator('#rul').scrollIntoViewIfNeeded();
  await shot('18-twin-rul-estimated');
  report('rul_estimated', { panel: worstText, card: estimateText, fits: fitted.fits });

  check(consoleErrors.length === 0, `no console errors: ${JSON.stringify(consoleErrors)}`);
  report('done', { done: true, consoleErrors });
} finally {
  await context.close();
  lines.close();
}
