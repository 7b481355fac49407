// A task lease as the labelling and review pages hold it: a countdown from the API's
// lease_until, heartbeats while the page is open, and a clear "lost" state when the API says
// the caller no longer holds it.
import { useEffect, useRef, useState } from "react";
import { type Api, ApiError, type Lease, unwrap } from "@/lib/api";

export type LeaseState = "held" | "lost";

/** Seconds left until ``leaseUntil`` (epoch seconds), ticking every second. */
export function useCountdown(leaseUntil: number | null | undefined): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const id = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(id);
  }, []);
  return leaseUntil ? Math.max(0, Math.round(leaseUntil - now / 1000)) : 0;
}

/**
 * Heartbeats the lease on ``taskId`` at a third of what is left (at most every 60 s), when the
 * page becomes visible again, and when the countdown runs out. ``onRenewed`` gets each new
 * lease; ``onLost`` runs once when the API answers that the lease is no longer the caller's.
 */
export function useHeartbeat(
  api: Api,
  projectId: string,
  taskId: string | undefined,
  leaseUntil: number | null | undefined,
  onRenewed: (lease: Lease) => void,
  onLost: (error: ApiError) => void,
): void {
  const handlers = useRef({ onRenewed, onLost });
  handlers.current = { onRenewed, onLost };
  const until = useRef(leaseUntil);
  until.current = leaseUntil;
  useEffect(() => {
    if (!taskId) return;
    let stopped = false;
    let timer = 0;
    const beat = async () => {
      if (stopped) return;
      try {
        const lease = await unwrap(api.POST("/projects/{project_id}/tasks/{task_id}/heartbeat", { params: { path: { project_id: projectId, task_id: taskId } } }));
        if (!stopped) handlers.current.onRenewed(lease);
      } catch (error) {
        if (stopped) return;
        if (error instanceof ApiError && (error.status === 409 || error.status === 404 || error.status === 403)) {
          stopped = true;
          handlers.current.onLost(error);
          return;
        }
      }
      schedule();
    };
    const schedule = () => {
      const left = until.current ? until.current - Date.now() / 1000 : 60;
      const wait = Math.max(5, Math.min(60, left / 3));
      timer = window.setTimeout(() => void beat(), wait * 1000);
    };
    const onVisible = () => {
      if (document.visibilityState === "visible") {
        window.clearTimeout(timer);
        void beat();
      }
    };
    schedule();
    document.addEventListener("visibilitychange", onVisible);
    window.addEventListener("focus", onVisible);
    return () => {
      stopped = true;
      window.clearTimeout(timer);
      document.removeEventListener("visibilitychange", onVisible);
      window.removeEventListener("focus", onVisible);
    };
  }, [api, projectId, taskId]);
}
