// A time-ordered ring buffer of (x, y) points for a live chart. Every point is written twice,
// at i and i + capacity, so the live window is always one contiguous slice: uPlot gets views
// of the buffer without a copy per frame.

export class RingSeries {
  private xs: Float64Array;
  private ys: Float64Array;
  private cap: number;
  private start = 0;
  private len = 0;

  /** Starts with room for `initial` points and doubles up to `max`; past that the oldest go. */
  constructor(
    initial = 1024,
    readonly max = 32_768,
  ) {
    this.cap = Math.max(2, Math.min(initial, max));
    this.xs = new Float64Array(this.cap * 2);
    this.ys = new Float64Array(this.cap * 2);
  }

  get length(): number {
    return this.len;
  }

  get capacity(): number {
    return this.cap;
  }

  /** x of the newest point, or -Infinity when empty. */
  lastX(): number {
    return this.len ? this.xs[this.start + this.len - 1] : -Infinity;
  }

  /** x of the oldest point, or +Infinity when empty. */
  firstX(): number {
    return this.len ? this.xs[this.start] : Infinity;
  }

  /** Appends a point; refuses (returns false) one older than the newest, which would unsort the window. */
  push(x: number, y: number): boolean {
    if (this.len && x < this.lastX()) return false;
    if (this.len === this.cap) {
      if (this.cap < this.max) this.grow(Math.min(this.cap * 2, this.max));
      else {
        this.start = (this.start + 1) % this.cap;
        this.len--;
      }
    }
    const i = (this.start + this.len) % this.cap;
    this.xs[i] = this.xs[i + this.cap] = x;
    this.ys[i] = this.ys[i + this.cap] = y;
    this.len++;
    return true;
  }

  /** Drops the points with x < `xMin`. */
  trimBefore(xMin: number): void {
    while (this.len && this.xs[this.start] < xMin) {
      this.start = (this.start + 1) % this.cap;
      this.len--;
    }
  }

  /**
   * Puts older points (sorted by x) in front of the current ones: history fetched while live
   * points already arrived. Points not older than the current oldest are ignored.
   */
  prepend(xs: ArrayLike<number>, ys: ArrayLike<number>): void {
    const first = this.firstX();
    let n = 0;
    while (n < xs.length && xs[n] < first) n++;
    if (!n) return;
    const [curX, curY] = this.view();
    const total = n + this.len;
    const keep = Math.min(total, this.max);
    const skip = total - keep;
    let cap = this.cap;
    while (cap < keep) cap *= 2;
    cap = Math.min(cap, this.max);
    const nx = new Float64Array(cap * 2);
    const ny = new Float64Array(cap * 2);
    let k = 0;
    for (let i = skip; i < n; i++, k++) {
      nx[k] = nx[k + cap] = xs[i];
      ny[k] = ny[k + cap] = ys[i];
    }
    for (let i = Math.max(0, skip - n); i < curX.length; i++, k++) {
      nx[k] = nx[k + cap] = curX[i];
      ny[k] = ny[k + cap] = curY[i];
    }
    this.xs = nx;
    this.ys = ny;
    this.cap = cap;
    this.start = 0;
    this.len = k;
  }

  /** The points oldest first, as views into the buffer (valid until the next write). */
  view(): [Float64Array, Float64Array] {
    return [
      this.xs.subarray(this.start, this.start + this.len),
      this.ys.subarray(this.start, this.start + this.len),
    ];
  }

  private grow(cap: number): void {
    const [x, y] = this.view();
    const nx = new Float64Array(cap * 2);
    const ny = new Float64Array(cap * 2);
    nx.set(x);
    nx.set(x, cap);
    ny.set(y);
    ny.set(y, cap);
    this.xs = nx;
    this.ys = ny;
    this.cap = cap;
    this.start = 0;
  }
}
