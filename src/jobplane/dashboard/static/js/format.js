// Numbers and times as people read them.

/** "4.2 s", "3 min 12 s", "2 h 05 min", "3 d 4 h". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  const s = Math.max(0, seconds);
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.floor(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(Math.floor(s % 60)).padStart(2, "0")} s`;
  if (s < 86400) {
    return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
  }
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** A short age: "5 s", "12 min", "3 h", "2 d". */
export function age(seconds) {
  const s = Math.max(0, seconds);
  if (s < 60) return `${Math.floor(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

const timeFormat = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});

/** Wall-clock seconds as local time of day, "14:03:27". */
export function clock(seconds) {
  return seconds ? timeFormat.format(new Date(seconds * 1000)) : "—";
}

/** Milliseconds too: "14:03:27.042" (log lines). */
export function clockMs(seconds) {
  if (!seconds) return "—";
  const ms = String(Math.floor((seconds * 1000) % 1000)).padStart(3, "0");
  return `${timeFormat.format(new Date(seconds * 1000))}.${ms}`;
}

/** Full local date and time, for tooltips and <time datetime>. */
export function dateTime(seconds) {
  return seconds ? dateTimeFormat.format(new Date(seconds * 1000)) : "—";
}

export function iso(seconds) {
  return seconds ? new Date(seconds * 1000).toISOString() : undefined;
}

export const count = (n) => new Intl.NumberFormat().format(n);

export function json(value) {
  return JSON.stringify(value, null, 2);
}
