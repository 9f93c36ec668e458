// useLive: data that reloads when the daemon says something changed.
import { useState, useEffect, useRef } from "./html.js";
import { onChange } from "./api.js";

/**
 * Load with ``load(signal)`` now, again after every change of a job (see
 * api.onChange) and, with ``every`` (ms), periodically as well. Returns
 * [{data, error, loading}, reload]. A reload asked for while one runs
 * runs once more after it, never in parallel.
 */
export function useLive(load, deps, { every = 0, live = true } = {}) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const reload = useRef(() => {});
  useEffect(() => {
    let alive = true;
    let busy = false;
    let again = false;
    const controller = new AbortController();
    setState((old) => ({ ...old, loading: true }));
    async function refresh() {
      if (!alive) return;
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      try {
        const data = await load(controller.signal);
        if (alive) setState({ data, error: null, loading: false });
      } catch (error) {
        if (alive && error.name !== "AbortError") {
          setState((old) => ({ ...old, error, loading: false }));
        }
      }
      busy = false;
      if (again) {
        again = false;
        refresh();
      }
    }
    reload.current = refresh;
    refresh();
    const off = live ? onChange(refresh) : () => {};
    const timer = every ? setInterval(refresh, every) : null;
    return () => {
      alive = false;
      controller.abort();
      off();
      if (timer) clearInterval(timer);
    };
  }, deps);
  return [state, () => reload.current()];
}

/** The current time (seconds), updated every ``ms`` milliseconds: for ages and durations. */
export function useTicker(ms = 1000) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}
