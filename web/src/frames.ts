// One requestAnimationFrame loop for the whole app: work asked for during a frame runs once in
// the next one, however many events arrived. The counters are read by the browser test.

type Task = () => void;

export interface FrameStats {
  /** Frames in which at least one task ran. */
  frames: number;
  /** Time spent in tasks, total and in the longest frame (ms). */
  workMs: number;
  maxWorkMs: number;
  /** Chart redraws (one per chart per frame at most). */
  redraws: number;
  /** Live events received. */
  events: number;
  /** Events skipped by the server because this client was slow (`lagged` messages). */
  skipped: number;
}

export const stats: FrameStats = { frames: 0, workMs: 0, maxWorkMs: 0, redraws: 0, events: 0, skipped: 0 };

const tasks = new Set<Task>();
let pending = false;

function run(): void {
  pending = false;
  const now = tasks.size ? performance.now() : 0;
  const batch = [...tasks];
  tasks.clear();
  for (const t of batch) {
    try {
      t();
    } catch (e) {
      console.error('frame task failed', e);
    }
  }
  if (batch.length) {
    const took = performance.now() - now;
    stats.frames++;
    stats.workMs += took;
    stats.maxWorkMs = Math.max(stats.maxWorkMs, took);
  }
}

/** Runs `task` in the next animation frame; asking again before then runs it once. */
export function requestFrame(task: Task): void {
  tasks.add(task);
  if (!pending) {
    pending = true;
    requestAnimationFrame(run);
  }
}

/** Forgets a task asked for and not yet run (a page closing). */
export function cancelFrame(task: Task): void {
  tasks.delete(task);
}
