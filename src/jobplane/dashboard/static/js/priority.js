// The priority scale: -20 (runs first) .. 19 (runs last), as colours and names.
//
// Warm for high priority, cool for low, neutral slate for normal (0): amber at
// -1 deepening through orange (-10) to red (-20); sky at 1 deepening through
// blue (10) to indigo (19). Colours are interpolated in OKLab within each side
// (never through grey), so neighbours differ evenly; the number is always
// written too, so colour is never the only cue.

export const HIGHEST = -20;
export const LOWEST = 19;
export const NAMES = { high: -10, normal: 0, low: 10 };

const NORMAL_COLOUR = "#64748b";
const WARM = [
  [-20, "#b91c1c"],
  [-10, "#ea580c"],
  [-1, "#f59e0b"],
];
const COOL = [
  [1, "#38bdf8"],
  [10, "#0369a1"],
  [19, "#4338ca"],
];

function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255].map((v) => v / 255);
}

const toLinear = (c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
const toGamma = (c) => (c <= 0.0031308 ? 12.92 * c : 1.055 * c ** (1 / 2.4) - 0.055);

function rgbToOklab([r, g, b]) {
  [r, g, b] = [r, g, b].map(toLinear);
  const l = Math.cbrt(0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b);
  const m = Math.cbrt(0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b);
  const s = Math.cbrt(0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b);
  return [
    0.2104542553 * l + 0.793617785 * m - 0.0040720468 * s,
    1.9779984951 * l - 2.428592205 * m + 0.4505937099 * s,
    0.0259040371 * l + 0.7827717662 * m - 0.808675766 * s,
  ];
}

function oklabToHex([L, a, b]) {
  const l = (L + 0.3963377774 * a + 0.2158037573 * b) ** 3;
  const m = (L - 0.1055613458 * a - 0.0638541728 * b) ** 3;
  const s = (L - 0.0894841775 * a - 1.291485548 * b) ** 3;
  const rgb = [
    4.0767416621 * l - 3.3077115913 * m + 0.2309699292 * s,
    -1.2684380046 * l + 2.6097574011 * m - 0.3413193965 * s,
    -0.0041960863 * l - 0.7034186147 * m + 1.707614701 * s,
  ];
  return "#" + rgb
    .map((c) => Math.round(Math.min(1, Math.max(0, toGamma(c))) * 255).toString(16).padStart(2, "0"))
    .join("");
}

const lab = (anchors) => anchors.map(([p, hex]) => [p, rgbToOklab(hexToRgb(hex))]);
const WARM_LAB = lab(WARM);
const COOL_LAB = lab(COOL);
const NORMAL_LAB = rgbToOklab(hexToRgb(NORMAL_COLOUR));

function mix(p, lightness = 0) {
  const clamped = Math.min(LOWEST, Math.max(HIGHEST, p));
  let colour = NORMAL_LAB;
  if (clamped !== 0) {
    const side = clamped < 0 ? WARM_LAB : COOL_LAB;
    let i = 0;
    while (i < side.length - 2 && clamped > side[i + 1][0]) i++;
    const [p0, c0] = side[i];
    const [p1, c1] = side[i + 1];
    const t = Math.min(1, Math.max(0, (clamped - p0) / (p1 - p0)));
    colour = c0.map((v, k) => v + (c1[k] - v) * t);
  }
  if (lightness) {
    // towards white (lightness > 0) or black (< 0), keeping the hue
    const target = lightness > 0 ? [1, 0, 0] : [0, 0, 0];
    const w = Math.abs(lightness);
    return oklabToHex(colour.map((v, k) => v + (target[k] - v) * w));
  }
  return oklabToHex(colour);
}

const cache = new Map();

/** {solid, text, tint, border, ink} colours of a priority; ink is for text on solid. */
export function colours(p) {
  if (!cache.has(p)) {
    const solid = mix(p);
    const [r, g, b] = hexToRgb(solid).map(toLinear);
    const luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    cache.set(p, {
      solid,
      text: mix(p, -0.45),
      tint: mix(p, 0.88),
      border: mix(p, 0.55),
      ink: luminance > 0.3 ? "#0f172a" : "#ffffff",
    });
  }
  return cache.get(p);
}

/** The priority bands of the queue depth chart: [label, lowest, highest, colour priority]. */
export const CHART_BANDS = [
  ["highest (−20…−11)", -20, -11, -16],
  ["high (−10…−1)", -10, -1, -6],
  ["normal (0)", 0, 0, 0],
  ["low (1…10)", 1, 10, 6],
  ["lowest (11…19)", 11, 19, 16],
];

/** "high", "normal", "low", or "" for numbers without a name. */
export function nameOf(p) {
  for (const [name, value] of Object.entries(NAMES)) if (value === p) return name;
  if (p === HIGHEST) return "highest";
  if (p === LOWEST) return "lowest";
  return "";
}

/** "-10 high", "-3", "19 lowest". */
export function label(p) {
  const name = nameOf(p);
  return name ? `${p} ${name}` : String(p);
}

/** Every priority, for pickers. */
export const ALL = Array.from({ length: LOWEST - HIGHEST + 1 }, (_, i) => HIGHEST + i);

/** Bands for the jobs filter: [value for the API, label]. */
export const BANDS = [
  ["-20..-11", "Highest (−20 … −11)"],
  ["-10..-1", "High (−10 … −1)"],
  ["0", "Normal (0)"],
  ["1..10", "Low (1 … 10)"],
  ["11..19", "Lowest (11 … 19)"],
];
