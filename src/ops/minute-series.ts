/** Counts per minute for the last `keepMinutes`, in memory (e.g. refused signatures, never stored). */
export class MinuteSeries {
  private readonly counts = new Map<number, number>();
  constructor(private readonly keepMinutes = 24 * 60) {}

  add(at = Date.now(), n = 1): void {
    const minute = Math.floor(at / 60_000) * 60_000;
    this.counts.set(minute, (this.counts.get(minute) ?? 0) + n);
    if (this.counts.size > this.keepMinutes) {
      const cutoff = minute - this.keepMinutes * 60_000;
      for (const m of this.counts.keys()) if (m < cutoff) this.counts.delete(m);
    }
  }

  since(from: number): { minute: number; count: number }[] {
    return [...this.counts.entries()]
      .filter(([m]) => m >= Math.floor(from / 60_000) * 60_000)
      .sort((a, b) => a[0] - b[0])
      .map(([minute, count]) => ({ minute, count }));
  }
}
