/**
 * A fixed-size history of numbers that hands out its newest values, oldest first, as a typed-array
 * view without copying: what uPlot's `setData` wants every second.
 *
 * Every value is written twice, at `i` and `i + capacity` of a buffer twice the capacity. The last
 * `n` values are then always one contiguous run, so `view(n)` is a `subarray` (no data copied, no
 * buffer allocated per sample). Unknown values are NaN: typed arrays have no null.
 */
export class RingBuffer {
  readonly capacity: number;
  readonly #buf: Float64Array;
  /** Where the next value goes, in [0, capacity). */
  #next = 0;
  #length = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`RingBuffer capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.#buf = new Float64Array(capacity * 2);
  }

  get length(): number {
    return this.#length;
  }

  push(value: number): void {
    this.#buf[this.#next] = value;
    this.#buf[this.#next + this.capacity] = value;
    this.#next = (this.#next + 1) % this.capacity;
    if (this.#length < this.capacity) this.#length++;
  }

  /** The newest `n` values (all of them by default), oldest first. A view: it changes as values
   *  are pushed, so read it before the next push or take it again. */
  view(n: number = this.#length): Float64Array {
    const count = Math.max(0, Math.min(Math.floor(n), this.#length));
    // The newest value sits at next-1 (mod capacity); its mirror is `capacity` further on.
    const end = ((this.#next - 1 + this.capacity) % this.capacity) + this.capacity + 1;
    return this.#buf.subarray(end - count, end);
  }

  /** The newest value, or NaN when empty. */
  last(): number {
    return this.#length === 0 ? Number.NaN : (this.#buf[((this.#next - 1 + this.capacity) % this.capacity)] as number);
  }

  clear(): void {
    this.#next = 0;
    this.#length = 0;
  }
}
