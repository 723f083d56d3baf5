// Reads events back through a running service's admin API, as an operator's script would.
import { waitFor } from '../helpers/index.ts';

export const ADMIN_TOKEN = 'e2e-admin-token-0123456789';

export interface AdminEvent {
  id: string;
  type: string;
  status: string;
  attempts: number;
  maxAttempts: number;
  /** Every job's attempts; `consumer` names the job (handlers, projections, route:NAME). */
  attemptHistory: { number: number; outcome: string; consumer: string }[];
}

/** The event with this id, or undefined when the service has none. */
export async function adminEvent(port: number, id: string): Promise<AdminEvent | undefined> {
  const res = await fetch(`http://127.0.0.1:${port}/admin/api/events/${encodeURIComponent(id)}`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  if (res.status === 404) return undefined;
  if (!res.ok) throw new Error(`GET event ${id}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { event: AdminEvent }).event;
}

/** Resolves with the event once `check` holds for it. */
export async function eventWhere(
  port: number,
  id: string,
  what: string,
  check: (e: AdminEvent) => boolean,
): Promise<AdminEvent> {
  return waitFor(
    async () => {
      const e = await adminEvent(port, id);
      return e && check(e) ? e : undefined;
    },
    { what: `${id}: ${what}` },
  );
}

/** The event once no worker will touch it again on its own: processed, unhandled, invalid or dead. */
export function settledEvent(port: number, id: string): Promise<AdminEvent> {
  return eventWhere(port, id, 'settled', (e) => !['pending', 'processing', 'retrying'].includes(e.status));
}
