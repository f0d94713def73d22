// uPlot charts: a live chart per numeric signal (a sliding window fed from a ring buffer,
// redrawn at most once per animation frame and only while on screen) and the history chart
// (mean line with a min–max band, drag to zoom), the anomaly score, and a what-if output
// (scenario with its band against the baseline).

import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

import { timeTicks } from './format';
import { requestFrame, cancelFrame, stats } from './frames';
import { RingSeries } from './ring';
import { yRange } from './whatif';

const AXIS = '#4b5563';
const GRID = 'rgba(0,0,0,0.07)';
const LINE = '#1d4ed8';
const RANGE_FILL = 'rgba(22,163,74,0.08)';
const RANGE_EDGE = 'rgba(22,163,74,0.55)';

/** Milliseconds of chart drawing per animation frame (of 16.7 at 60 Hz), the rest is the browser's. */
const FRAME_BUDGET_MS = 6;

/**
 * Live charts redraw at most this often. Their 10-minute window puts over a second in each
 * pixel column, so faster redraws change nothing visible; the values beside the charts
 * change as often.
 */
const MIN_REDRAW_MS = 250;

function axes(): uPlot.Axis[] {
  const font = '12px system-ui, sans-serif';
  return [
    {
      stroke: AXIS,
      font,
      grid: { stroke: GRID, width: 1 },
      ticks: { stroke: GRID, width: 1 },
      values: (_u, splits, _axis, _space, incr) => timeTicks(splits, incr),
    },
    { stroke: AXIS, font, size: 56, grid: { stroke: GRID, width: 1 }, ticks: { stroke: GRID, width: 1 } },
  ];
}

/** Shades the normal range [min, max] of a signal behind the data, edges dashed. */
function normalRangeHook(min?: number, max?: number): (u: uPlot) => void {
  return (u) => {
    if (min === undefined && max === undefined) return;
    const { left, top, width, height } = u.bbox;
    const yScale = u.scales.y;
    if (yScale.min == null || yScale.max == null) return;
    const lo = min ?? yScale.min;
    const hi = max ?? yScale.max;
    const yTop = Math.max(top, Math.min(top + height, u.valToPos(hi, 'y', true)));
    const yBot = Math.max(top, Math.min(top + height, u.valToPos(lo, 'y', true)));
    const ctx = u.ctx;
    ctx.save();
    ctx.fillStyle = RANGE_FILL;
    ctx.fillRect(left, yTop, width, yBot - yTop);
    ctx.strokeStyle = RANGE_EDGE;
    ctx.setLineDash([4, 4]);
    ctx.lineWidth = 1;
    for (const v of [min, max]) {
      if (v === undefined) continue;
      const pos = u.valToPos(v, 'y', true);
      if (pos <= top || pos >= top + height) continue;
      ctx.beginPath();
      ctx.moveTo(left, Math.round(pos) + 0.5);
      ctx.lineTo(left + width, Math.round(pos) + 0.5);
      ctx.stroke();
    }
    ctx.restore();
  };
}

/** Keeps a chart as wide as its container. */
function fitWidth(el: HTMLElement, plot: uPlot, height: number): ResizeObserver {
  const ro = new ResizeObserver(() => {
    const w = Math.floor(el.clientWidth);
    if (w > 0 && w !== plot.width) plot.setSize({ width: w, height });
  });
  ro.observe(el);
  return ro;
}

export interface LiveChartSpec {
  name: string;
  unit: string;
  min?: number;
  max?: number;
}

/** One live chart: the last `windowMs` of a signal. */
class LiveChart {
  readonly ring = new RingSeries(1024, 32_768);
  readonly plot: uPlot;
  dirty = true;
  visible = false;
  /** Right edge of the window (epoch s), set before each redraw. */
  private edge = Date.now() / 1000;
  private readonly ro: ResizeObserver;

  constructor(
    readonly el: HTMLElement,
    readonly spec: LiveChartSpec,
    readonly windowS: number,
    height: number,
  ) {
    const opts: uPlot.Options = {
      width: Math.max(200, Math.floor(el.clientWidth) || 400),
      height,
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
      scales: { x: { time: true, range: () => [this.edge - this.windowS, this.edge] } },
      axes: axes(),
      // uPlot shows points only where they are sparse: a first reading is a dot, not nothing.
      series: [{}, { label: spec.name, stroke: LINE, width: 1.5 }],
      hooks: { drawAxes: [normalRangeHook(spec.min, spec.max)] },
    };
    this.plot = new uPlot(opts, [new Float64Array(0), new Float64Array(0)], el);
    this.ro = fitWidth(el, this.plot, height);
  }

  /** Redraws now (uPlot's batch mode draws synchronously, so the frame budget sees the cost). */
  render(now: number): void {
    this.edge = Math.max(now, this.ring.lastX());
    this.ring.trimBefore(this.edge - this.windowS);
    this.plot.batch(() => this.plot.setData(this.ring.view() as uPlot.AlignedData, true));
    this.dirty = false;
    stats.redraws++;
  }

  dispose(): void {
    this.ro.disconnect();
    this.plot.destroy();
  }
}

/**
 * The live charts of one twin. Events are pushed into ring buffers as they arrive; a redraw of
 * the charts that changed and are on screen runs in the next animation frame, so 100 signals at
 * 10 Hz cost at most one redraw per chart per frame. The window slides once a second even when
 * nothing arrives.
 */
export class LiveCharts {
  private readonly charts = new Map<string, LiveChart>();
  private readonly byEl = new Map<Element, LiveChart>();
  /** The charts in page order, for the round-robin redraw. */
  private readonly order: LiveChart[] = [];
  private readonly io: IntersectionObserver;
  private readonly tick: ReturnType<typeof setInterval>;

  constructor(
    specs: LiveChartSpec[],
    mount: (spec: LiveChartSpec) => HTMLElement,
    readonly windowMs = 600_000,
    height = 150,
  ) {
    this.io = new IntersectionObserver((entries) => {
      for (const e of entries) {
        const c = this.byEl.get(e.target);
        if (!c) continue;
        c.visible = e.isIntersecting;
        if (c.visible && c.dirty) requestFrame(this.flush);
      }
    });
    for (const spec of specs) {
      const el = mount(spec);
      const chart = new LiveChart(el, spec, windowMs / 1000, height);
      this.charts.set(spec.name, chart);
      this.order.push(chart);
      this.byEl.set(el, chart);
      this.io.observe(el);
    }
    this.tick = setInterval(() => {
      for (const c of this.charts.values()) c.dirty = true;
      requestFrame(this.flush);
    }, 1000);
  }

  get size(): number {
    return this.charts.size;
  }

  /** A new point of `signal` at `tsMs`; out-of-order points are dropped (they are in history). */
  push(signal: string, tsMs: number, value: number): void {
    const c = this.charts.get(signal);
    if (!c) return;
    if (c.ring.push(tsMs / 1000, value)) {
      c.dirty = true;
      if (c.visible) requestFrame(this.flush);
    }
  }

  /** Older points from history, put before the live ones. */
  seed(signal: string, tsMs: number[], values: number[]): void {
    const c = this.charts.get(signal);
    if (!c) return;
    c.ring.prepend(
      tsMs.map((t) => t / 1000),
      values,
    );
    c.dirty = true;
    requestFrame(this.flush);
  }

  /** Points held per signal (for the page's footer and the tests). */
  points(signal: string): number {
    return this.charts.get(signal)?.ring.length ?? 0;
  }

  /**
   * Redraws the charts that changed and are on screen in rounds at most MIN_REDRAW_MS apart:
   * all of a round's charts in the same frame when the drawing budget allows, the rest in
   * the next frames (round-robin, so none starves). Between rounds no chart changes, so most
   * frames have nothing to paint or composite.
   */
  private readonly flush = (): void => {
    const start = performance.now();
    if (!this.roundOpen) {
      const wait = this.roundAt + MIN_REDRAW_MS - start;
      if (wait > 0) {
        this.timer ??= setTimeout(() => {
          this.timer = null;
          requestFrame(this.flush);
        }, wait);
        return;
      }
      this.roundAt = start;
      this.roundOpen = true;
    }
    const now = Date.now() / 1000;
    const list = this.order;
    for (let k = 0; k < list.length; k++) {
      const i = (this.next + k) % list.length;
      const c = list[i];
      if (!c.dirty || !c.visible) continue;
      if (performance.now() - start > FRAME_BUDGET_MS) {
        this.next = i;
        requestFrame(this.flush);
        return;
      }
      c.render(now);
    }
    this.roundOpen = false;
  };

  /** When the current or last round of redraws started, whether it is still drawing. */
  private roundAt = -Infinity;
  private roundOpen = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Where the next frame's drawing starts. */
  private next = 0;

  dispose(): void {
    clearInterval(this.tick);
    if (this.timer) clearTimeout(this.timer);
    cancelFrame(this.flush);
    this.io.disconnect();
    for (const c of this.charts.values()) c.dispose();
    this.charts.clear();
  }
}

export interface HistoryData {
  /** Bucket centres, epoch s. */
  xs: number[];
  mean: (number | null)[];
  min: (number | null)[];
  max: (number | null)[];
  /** The queried range, epoch s. */
  from: number;
  to: number;
}

/** The history chart: mean line with a min–max band; dragging across it asks `onZoom`. */
export class HistoryChart {
  private readonly plot: uPlot;
  private readonly ro: ResizeObserver;
  private range: [number, number] = [0, 1];

  constructor(
    el: HTMLElement,
    spec: LiveChartSpec,
    onZoom: (fromMs: number, toMs: number) => void,
    height = 300,
  ) {
    const opts: uPlot.Options = {
      width: Math.max(300, Math.floor(el.clientWidth) || 600),
      height,
      legend: { show: true, live: true },
      cursor: { drag: { x: true, y: false, setScale: false } },
      select: { show: true, left: 0, top: 0, width: 0, height: 0 },
      scales: { x: { time: true, range: () => this.range } },
      axes: axes(),
      series: [
        {},
        { label: 'max', stroke: 'rgba(29,78,216,0.35)', width: 1, points: { show: false } },
        { label: 'min', stroke: 'rgba(29,78,216,0.35)', width: 1, points: { show: false } },
        { label: `mean${spec.unit ? ` (${spec.unit})` : ''}`, stroke: LINE, width: 2 },
      ],
      bands: [{ series: [1, 2], fill: 'rgba(29,78,216,0.12)' }],
      hooks: {
        drawAxes: [normalRangeHook(spec.min, spec.max)],
        setSelect: [
          (u) => {
            if (u.select.width < 4) return;
            const from = u.posToVal(u.select.left, 'x');
            const to = u.posToVal(u.select.left + u.select.width, 'x');
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            onZoom(from * 1000, to * 1000);
          },
        ],
      },
    };
    this.plot = new uPlot(opts, [[], [], [], []], el);
    this.ro = fitWidth(el, this.plot, height);
  }

  setData(d: HistoryData): void {
    this.range = [d.from, d.to];
    this.plot.setData([d.xs, d.max, d.min, d.mean], true);
  }

  dispose(): void {
    this.ro.disconnect();
    this.plot.destroy();
  }
}

/** The score above which the detector calls a twin anomalous. */
export const SCORE_THRESHOLD = 0.5;

/**
 * The anomaly score under the history chart: the highest score per bucket on a fixed 0–1
 * scale, the part above the threshold shaded and the threshold dashed. It shares the history
 * chart's range and axis widths so the two line up.
 */
export class ScoreChart {
  private readonly plot: uPlot;
  private readonly ro: ResizeObserver;
  private range: [number, number] = [0, 1];

  constructor(el: HTMLElement, height = 110) {
    const threshold = (u: uPlot) => {
      const { left, top, width } = u.bbox;
      const y = Math.round(u.valToPos(SCORE_THRESHOLD, 'y', true)) + 0.5;
      const ctx = u.ctx;
      ctx.save();
      ctx.fillStyle = 'rgba(220,38,38,0.07)';
      ctx.fillRect(left, top, width, y - top);
      ctx.strokeStyle = 'rgba(220,38,38,0.7)';
      ctx.setLineDash([4, 4]);
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(left + width, y);
      ctx.stroke();
      ctx.restore();
    };
    const opts: uPlot.Options = {
      width: Math.max(300, Math.floor(el.clientWidth) || 600),
      height,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true, range: () => this.range }, y: { range: [0, 1] } },
      axes: axes().map((a, i) => (i === 1 ? { ...a, splits: () => [0, 0.5, 1] } : a)),
      series: [{}, { label: 'anomaly score (max)', stroke: '#b45309', width: 1.5, fill: 'rgba(180,83,9,0.12)' }],
      hooks: { drawAxes: [threshold] },
    };
    this.plot = new uPlot(opts, [[], []], el);
    this.ro = fitWidth(el, this.plot, height);
  }

  /** Bucket centres (epoch s) and the highest score in each, over the range `from`..`to` (epoch s). */
  setData(xs: number[], scores: (number | null)[], from: number, to: number): void {
    this.range = [from, to];
    this.plot.setData([xs, scores], true);
  }

  dispose(): void {
    this.ro.disconnect();
    this.plot.destroy();
  }
}

export interface ScenarioChartSpec extends LiveChartSpec {
  /** Predicted limit crossings to mark (epoch seconds): the scenario's, its band's, the baseline's. */
  crossings: { at: number; label: string; color: string }[];
}

export interface ScenarioData {
  xs: number[];
  baseline: (number | null)[];
  scenario: number[];
  lower: number[];
  upper: number[];
}

/**
 * One output of a what-if: the baseline (grey, dashed) and the scenario (blue) with its
 * uncertainty band filled between lower and upper, over the declared normal range, and a
 * vertical mark where a trajectory is predicted to leave that range.
 */
export class ScenarioChart {
  private readonly plot: uPlot;
  private readonly ro: ResizeObserver;

  constructor(el: HTMLElement, spec: ScenarioChartSpec, d: ScenarioData, height = 220) {
    const marks = (u: uPlot) => {
      const { top, height: hgt } = u.bbox;
      const ctx = u.ctx;
      ctx.save();
      ctx.font = `${Math.round(11 * devicePixelRatio)}px system-ui, sans-serif`;
      for (const c of spec.crossings) {
        const x = Math.round(u.valToPos(c.at, 'x', true)) + 0.5;
        ctx.strokeStyle = c.color;
        ctx.fillStyle = c.color;
        ctx.lineWidth = 2;
        ctx.setLineDash([]);
        ctx.beginPath();
        ctx.moveTo(x, top);
        ctx.lineTo(x, top + hgt);
        ctx.stroke();
        ctx.fillText(c.label, x + 4, top + 12 * devicePixelRatio);
      }
      ctx.restore();
    };
    const first = d.xs[0] ?? 0;
    const last = d.xs[d.xs.length - 1] ?? first + 1;
    const unit = spec.unit ? ` (${spec.unit})` : '';
    const opts: uPlot.Options = {
      width: Math.max(300, Math.floor(el.clientWidth) || 600),
      height,
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
      scales: {
        x: { time: true, range: () => [first, last > first ? last : first + 1] },
        // Scaled to the trajectories so a change shows; a limit of the normal range comes
        // into view when it is near them (as far as the data spans), else the caption says it.
        y: { range: (_u, lo, hi) => yRange(lo, hi, spec.min, spec.max) },
      },
      axes: axes(),
      series: [
        {},
        { label: 'upper', stroke: 'rgba(29,78,216,0.45)', width: 1, dash: [3, 3], points: { show: false } },
        { label: 'lower', stroke: 'rgba(29,78,216,0.45)', width: 1, dash: [3, 3], points: { show: false } },
        { label: `baseline${unit}`, stroke: '#6b7280', width: 2, dash: [6, 4], points: { show: false } },
        { label: `scenario${unit}`, stroke: LINE, width: 2, points: { show: false } },
      ],
      bands: [{ series: [1, 2], fill: 'rgba(29,78,216,0.12)' }],
      hooks: { drawAxes: [normalRangeHook(spec.min, spec.max)], draw: [marks] },
    };
    this.plot = new uPlot(opts, [d.xs, d.upper, d.lower, d.baseline, d.scenario] as uPlot.AlignedData, el);
    this.ro = fitWidth(el, this.plot, height);
  }

  dispose(): void {
    this.ro.disconnect();
    this.plot.destroy();
  }
}
