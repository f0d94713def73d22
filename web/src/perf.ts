// Timing marks the browser test reads: when each page first showed its data, and the frame
// loop's counters. Exposed as `window.__doppel`.

import { stats } from './frames';

export interface PerfInfo {
  /** performance.now() when a page first showed what it is for (`fleet`, `twin`...). */
  ready: Record<string, number>;
  stats: typeof stats;
}

const info: PerfInfo = { ready: {}, stats };

declare global {
  interface Window {
    __doppel: PerfInfo;
  }
}

window.__doppel = info;

/** Records that `what` is on screen now (first time per page load only). */
export function markReady(what: string): void {
  if (what in info.ready) return;
  info.ready[what] = performance.now();
  performance.mark(`doppel:${what}`);
}
