import { MAX_TIMER_MS } from '../config/duration.ts';

/**
 * One timer for the times the worker must look for due events: the next poll, and every retry it
 * scheduled. It fires at the earliest of them and re-arms for the next, so a retry that falls due
 * between two polls starts on time even when another wake-up used the timer first.
 */
export interface WakeTimer {
  /** Sets the next poll (replacing the previous one): the safety net for events due elsewhere. */
  pollAt(time: number): void;
  /** Adds a time when an event this worker scheduled falls due. */
  dueAt(time: number): void;
  /** Disarms the timer for good: later times are ignored (the worker is stopping). */
  stop(): void;
}

export function createWakeTimer(onWake: () => void): WakeTimer {
  let nextPoll = Number.POSITIVE_INFINITY;
  /** Due times, earliest first. */
  const dueTimes: number[] = [];
  let timer: NodeJS.Timeout | undefined;
  let armedFor = Number.POSITIVE_INFINITY;
  let stopped = false;

  function arm(): void {
    if (stopped) return;
    const next = Math.min(nextPoll, dueTimes[0] ?? Number.POSITIVE_INFINITY);
    if (next === armedFor) return;
    clearTimeout(timer);
    timer = undefined;
    armedFor = next;
    if (next === Number.POSITIVE_INFINITY) return;
    // Node fires a longer delay after 1 ms (a 30-day retry, say): wait the longest it takes, and
    // re-arm then (fire() keeps a time not reached yet).
    timer = setTimeout(fire, Math.min(MAX_TIMER_MS, Math.max(0, next - Date.now())));
  }

  function fire(): void {
    timer = undefined;
    armedFor = Number.POSITIVE_INFINITY;
    // Node may fire a timer a millisecond early: a time not reached yet stays, and re-arms below.
    const now = Date.now();
    let passed = 0;
    while (passed < dueTimes.length && (dueTimes[passed] as number) <= now) passed++;
    dueTimes.splice(0, passed);
    const pollDue = nextPoll <= now;
    if (pollDue) nextPoll = Number.POSITIVE_INFINITY;
    arm();
    if (passed > 0 || pollDue) onWake();
  }

  return {
    pollAt(time) {
      nextPoll = time;
      arm();
    },
    dueAt(time) {
      let i = dueTimes.length;
      while (i > 0 && (dueTimes[i - 1] as number) > time) i--;
      dueTimes.splice(i, 0, time);
      arm();
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
      armedFor = Number.POSITIVE_INFINITY;
      nextPoll = Number.POSITIVE_INFINITY;
      dueTimes.length = 0;
    },
  };
}
